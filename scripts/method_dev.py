"""Choose a method's defaults on development prompts: train the policy slot with some settings, score it against SFT.

Run after a pipeline run (it reads data/tokenized, models/sft, models/reward, models/judge):
    python scripts/method_dev.py --set align.method=dpo --set dpo.max_steps=16 [--set ...] [--prompts 64]

The align stage runs as is in a scratch project whose inputs link to this checkout's (nothing here is overwritten).
The policy and SFT then sample the last `--prompts` PPO prompts with evaluation's settings, and the reward model and
the judge score both, as evaluate does. PPO prompts are no held-out evaluation prompt, PPO holds the last ones out as
its dev split and offline methods never train on them, so choosing settings here leaves the evaluation set unseen.
Prints the settings, the stage's wall time, and win rates (raw and length-controlled) with intervals.
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

from alignflow.config import apply_overlay, parse_assignments  # noqa: E402

INPUTS = ["data/tokenized", "models/sft", "models/reward", "models/judge"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--prompts", type=int, default=64)
    args = parser.parse_args()
    missing = [name for name in INPUTS if not (ROOT / name).exists()]
    if missing:
        sys.exit(f"scripts/method_dev.py: {', '.join(missing)} not found: run the pipeline first (alignflow run)")
    folder = Path(tempfile.mkdtemp(prefix="alignflow-method-dev-"))
    try:
        for name in INPUTS:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
        shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
        params = apply_overlay(folder / "params.yaml", parse_assignments(args.set))
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "HF_HUB_OFFLINE": "1"}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "alignflow.stages.align"], cwd=folder, env=env, check=True)
        seconds = time.monotonic() - started
        os.chdir(folder)
        metrics = score_on_dev_prompts(params, args.prompts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    keys = ("win_rate", "lc_win_rate", "judge_win_rate", "judge_lc_win_rate")
    shown = {key: metrics[f"{key}_policy_vs_sft"] for key in keys}
    shown.update(
        {f"{key}_ci": [metrics[f"{key}_policy_vs_sft_ci_low"], metrics[f"{key}_policy_vs_sft_ci_high"]] for key in keys}
    )
    shown.update({k: metrics[k] for k in ("kl_policy_sft_mean", "length_policy_mean", "length_sft_mean")})
    shown.update({k: metrics[k] for k in ("unfinished_policy", "unfinished_sft")})
    print(json.dumps({"settings": args.set, "align_stage_seconds": round(seconds, 1), **shown}))


def score_on_dev_prompts(params, count: int) -> dict:
    """evaluate's comparison (same sampling settings, scorers and statistics) on the last `count` PPO prompts
    (PPO's dev split when count <= ppo.curve_prompts)."""
    import dataclasses

    from alignflow import paths
    from alignflow.evaluation.loading import load_model, load_scorers, load_tokenizer
    from alignflow.evaluation.suite import evaluate_models
    from alignflow.stages.common import load_arrow

    tokenizer, stop_id = load_tokenizer(params, paths.POLICY)
    sft, policy = load_model(params, "sft"), load_model(params, "policy")
    prompts = load_arrow(paths.TOKENIZED / "prompts", "tokenize").to_list()[-count:]
    config = dataclasses.replace(params.evaluate, best_of_n=0)
    result = evaluate_models(sft, policy, tokenizer, prompts, load_scorers(params), stop_id, config, params.common.seed)
    return result.metrics


if __name__ == "__main__":
    main()
