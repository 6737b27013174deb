"""`accelerate launch` runs our PPO on two CPU processes (gloo): each samples half the batch, weights stay in sync."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_ppo_on_two_processes(tmp_path):
    script = Path(__file__).with_name("ppo_two_processes.py")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["updates"] == 3 and r["prompts_seen"] == 2 for r in ranks)
    assert ranks[0]["value_head_sum"] == pytest.approx(ranks[1]["value_head_sum"], abs=1e-6)
    assert (tmp_path / "checkpoints" / "checkpoint-3" / "state.json").is_file()
