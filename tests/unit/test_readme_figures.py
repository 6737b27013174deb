"""The README's IFEval figures are the files' that measured them: the generator's output equals the README."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_ifeval_block_is_what_the_generator_writes_from_the_committed_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/ifeval_results.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
