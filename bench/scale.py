"""Benchmark: the SFT and PPO stages in one process (`compute.backend: local`), on Ray Train with 1 worker (this
machine's CPUs) and with 2 workers (half the CPUs each), on the same models, data and seeds.

Run: `python bench/scale.py [--sft-steps 12] [--ppo-updates 4] [--rounds 3] [--out FILE.json]` after a pipeline run (it
reads data/tokenized, models/base for SFT, and models/sft, models/reward, models/judge for PPO). Each configuration runs
the real stage command in a scratch project whose inputs link to this checkout's, so nothing here is overwritten. It
prints SFT tokens/s (real tokens, from HF Trainer's train_runtime) and PPO episodes/s (from the stage's own timing), the
stage's wall time (which adds Ray's start-up and the hand-over of inputs), the SFT loss and PPO's final response length
(equal when the configurations did the same work), and the ratios to local; `--out` saves the figures as JSON. This
machine's speed drifts within minutes, so the configurations run in rounds, in a rotated order, and each ratio is the
median of the rounds' own ratios.
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
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignflow.config import apply_overlay  # noqa: E402
from alignflow.timing import machine  # noqa: E402
from bench.record import save  # noqa: E402

CONFIGS = {
    "local": {"backend": "local"},
    "ray, 1 worker": {"backend": "ray", "num_workers": 1, "resources_per_worker": {"CPU": os.cpu_count() or 1}},
    "ray, 2 workers": {"backend": "ray", "num_workers": 2},
}
INPUTS = {
    "sft": ["data/tokenized", "models/base"],
    "align": ["data/tokenized", "models/sft", "models/reward", "models/judge"],
}


def scratch_project(stage: str, overlay: dict) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"alignflow-bench-{stage}-"))
    for name in INPUTS[stage]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    apply_overlay(folder / "params.yaml", overlay)
    return folder


def timed_stage(stage: str, overlay: dict) -> tuple[dict, float]:
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    missing = sorted({name for names in INPUTS.values() for name in names if not (ROOT / name).exists()})
    if missing:
        sys.exit(f"bench/scale.py: {', '.join(missing)} not found: run the pipeline first (alignflow run)")

    from datasets import load_from_disk

    from alignflow.config import load_params

    params = load_params(ROOT / "params.yaml")
    lengths = [len(ids) for ids in load_from_disk(str(ROOT / "data/tokenized/sft"))["train"]["input_ids"]]
    mean_tokens = sum(lengths) / len(lengths)
    sft = {"max_steps": args.sft_steps, "eval_steps": 0, "save_steps": 10_000, "load_best_model_at_end": False}
    ppo = {"updates": args.ppo_updates, "curve_every": 0, "checkpoint_every": 10_000}
    names = list(CONFIGS)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    stages: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # rotated: no config always first
            compute = CONFIGS[name]
            workers = compute.get("num_workers", 1)
            sft_metrics, sft_wall = timed_stage("sft", {"sft": sft, "compute": compute})
            per_worker = {"minibatch_size": params.ppo.minibatch_size // workers}  # one step on the whole batch
            ppo_metrics, ppo_wall = timed_stage(
                "align", {"align": {"method": "ppo"}, "ppo": {**ppo, **per_worker}, "compute": compute}
            )
            tokens = sft_tokens_per_second(sft_metrics, workers, params.sft.batch_size, mean_tokens)
            rates[name].append((tokens, ppo_metrics["episodes_per_second"]))
            stages[name].append((sft_wall, sft_metrics["train_loss"], ppo_wall, ppo_metrics["final_response_length"]))
            print(
                f"round {round_ + 1}  {name:15s} SFT {tokens:7.1f} tokens/s (stage {sft_wall:4.0f} s, "
                f"loss {sft_metrics['train_loss']:.4f})   PPO {ppo_metrics['episodes_per_second']:6.3f} episodes/s "
                f"(stage {ppo_wall:4.0f} s, response length {ppo_metrics['final_response_length']:.1f})",
                flush=True,
            )
    print(f"\nmedian over {args.rounds} rounds; ratios are medians of each round's ratio (>1 is faster):")
    result = {
        "machine": machine(),
        "sft_steps": args.sft_steps,
        "ppo_updates": args.ppo_updates,
        "rounds": args.rounds,
    }
    for name in names:
        sft_rates, ppo_rates = zip(*rates[name])
        line = f"  {name:15s} SFT {median(sft_rates):7.1f} tokens/s   PPO {median(ppo_rates):6.3f} episodes/s"
        key = name.replace(",", "").replace(" ", "_")
        sft_walls, losses, ppo_walls, lengths = zip(*stages[name])
        result |= {
            f"{key}_sft_tokens_per_second": round(median(sft_rates), 1),
            f"{key}_ppo_episodes_per_second": round(median(ppo_rates), 3),
            f"{key}_sft_stage_seconds": round(median(sft_walls)),
            f"{key}_ppo_stage_seconds": round(median(ppo_walls)),
            f"{key}_sft_loss_by_round": [round(loss, 4) for loss in losses],
            f"{key}_ppo_final_response_length_by_round": [round(length, 1) for length in lengths],
        }
        if name != "local":
            sft_ratio, ppo_ratio = paired(rates, name, "local", 0), paired(rates, name, "local", 1)
            line += f"   vs local: SFT {sft_ratio:.2f}x  PPO {ppo_ratio:.2f}x"
            result[f"{key}_vs_local_sft_ratio"] = round(sft_ratio, 2)
            result[f"{key}_vs_local_ppo_ratio"] = round(ppo_ratio, 2)
        print(line)
    one, two = "ray, 1 worker", "ray, 2 workers"
    print(
        f"  2-worker scaling efficiency vs 1 worker: SFT {paired(rates, two, one, 0) / 2:.0%}, "
        f"PPO {paired(rates, two, one, 1) / 2:.0%}"
    )
    print(
        f"Ray 1-worker overhead: SFT {1 - paired(rates, one, 'local', 0):+.1%}, "
        f"PPO {1 - paired(rates, one, 'local', 1):+.1%} (target <= 10%)"
    )
    result |= {
        "sft_2_worker_scaling_efficiency": round(paired(rates, two, one, 0) / 2, 3),
        "ppo_2_worker_scaling_efficiency": round(paired(rates, two, one, 1) / 2, 3),
        "sft_ray_1_worker_overhead": round(1 - paired(rates, one, "local", 0), 3),
        "ppo_ray_1_worker_overhead": round(1 - paired(rates, one, "local", 1), 3),
    }
    save(args.out, result)


def paired(rates: dict[str, list[tuple[float, float]]], name: str, baseline: str, metric: int) -> float:
    """Median over rounds of name's rate / baseline's in the same round: the machine's speed drifts over minutes,
    and a round runs the configurations minutes apart, not hours."""
    return median(run[metric] / base[metric] for run, base in zip(rates[name], rates[baseline]))


if __name__ == "__main__":
    main()
