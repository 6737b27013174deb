"""What `--out FILE.json` writes for every script in bench/: one JSON object, the machine that measured (`"machine"`,
from `alignflow.timing.machine`) beside the figures the script prints. `scripts/docgen/results.py` renders
`results/bench/<script>.json` as a table in docs/benchmarks.md, so the figures there come from a committed file.
"""

from __future__ import annotations

import json
from pathlib import Path


def save(path: Path | None, result: dict) -> None:
    """Write `result` to `path` as indented JSON; nothing when `path` is None (`--out` not given)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
