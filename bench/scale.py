"""Benchmark: the SFT and PPO stages in one process (`compute.backend: local`), on Ray Train with 1 worker (this
machine's CPUs) and with 2 workers (half the CPUs each), on the same models, data and seeds.

Run: `python bench/scale.py [--sft-steps 12] [--ppo-updates 4]` after a pipeline run (it reads data/tokenized,
models/base for SFT, and models/sft, models/reward, models/judge for PPO). Each configuration runs the real stage
command in a scratch project whose inputs link to this checkout's, so nothing here is overwritten. It prints SFT
tokens/s (real tokens, from HF Trainer's train_runtime) and PPO episodes/s (from the stage's own timing), the
stage's wall time (which adds Ray's start-up and the hand-over of inputs), and the ratios to local side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignflow.config import apply_overlay  # noqa: E402

CONFIGS = {
    "local": {"backend": "local"},
    "ray, 1 worker": {"backend": "ray", "num_workers": 1, "resources_per_worker": {"CPU": os.cpu_count() or 1}},
    "ray, 2 workers": {"backend": "ray", "num_workers": 2},
}
INPUTS = {
    "sft": ["data/tokenized", "models/base"],
    "ppo": ["data/tokenized", "models/sft", "models/reward", "models/judge"],
}


def scratch_project(stage: str, overlay: dict) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"alignflow-bench-{stage}-"))
    for name in INPUTS[stage]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    apply_overlay(folder / "params.yaml", overlay)
    return folder


def run_stage(stage: str, overlay: dict) -> tuple[dict, float]:
    folder = scratch_project(stage, overlay)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", f"alignflow.stages.{stage}"],
            cwd=folder,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads((folder / "metrics" / f"{stage}.json").read_text()), time.monotonic() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sft_tokens_per_second(metrics: dict, workers: int, batch_size: int, mean_tokens: float) -> float:
    return metrics["steps"] * batch_size * workers * mean_tokens / metrics["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=12)
    parser.add_argument("--ppo-updates", type=int, default=4)
    args = parser.parse_args()

    from datasets import load_from_disk

    from alignflow.config import load_params

    params = load_params(ROOT / "params.yaml")
    lengths = [len(ids) for ids in load_from_disk(str(ROOT / "data/tokenized/sft"))["train"]["input_ids"]]
    mean_tokens = sum(lengths) / len(lengths)
    sft = {"max_steps": args.sft_steps, "eval_steps": 0, "save_steps": 10_000, "load_best_model_at_end": False}
    ppo = {"updates": args.ppo_updates, "curve_every": 0, "checkpoint_every": 10_000}
    rows = []
    for name, compute in CONFIGS.items():
        workers = compute.get("num_workers", 1)
        sft_metrics, sft_wall = run_stage("sft", {"sft": sft, "compute": compute})
        per_worker = {"minibatch_size": params.ppo.minibatch_size // workers}  # the same one step on the whole batch
        ppo_metrics, ppo_wall = run_stage("ppo", {"ppo": {**ppo, **per_worker}, "compute": compute})
        tokens = sft_tokens_per_second(sft_metrics, workers, params.sft.batch_size, mean_tokens)
        rows.append((name, tokens, sft_wall, ppo_metrics["episodes_per_second"], ppo_wall))
        print(
            f"{name:15s} SFT {tokens:8.1f} tokens/s (stage {sft_wall:5.0f} s)   "
            f"PPO {ppo_metrics['episodes_per_second']:6.3f} episodes/s (stage {ppo_wall:5.0f} s)",
            flush=True,
        )
    local, one, two = rows
    print("\nratios to local (throughput; >1 is faster):")
    for name, tokens, _, episodes, _ in rows[1:]:
        print(f"  {name:15s} SFT {tokens / local[1]:.2f}x   PPO {episodes / local[3]:.2f}x")
    print(
        f"  Ray 1-worker overhead: SFT {1 - one[1] / local[1]:+.1%}, PPO {1 - one[3] / local[3]:+.1%} (target <= 10%)"
    )
    print(
        f"  2-worker scaling efficiency vs 1 worker: SFT {two[1] / (2 * one[1]):.0%}, PPO {two[3] / (2 * one[3]):.0%}"
    )


if __name__ == "__main__":
    main()
