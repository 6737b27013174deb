"""ppo: optimise the SFT policy against the reward model with our PPO -> models/policy/ (merged LM + value head).

Run: `python -m alignflow.stages.ppo` (or `accelerate launch -m alignflow.stages.ppo` on several processes;
`compute.backend: ray`: on Ray Train workers).
Checkpoints every `ppo.checkpoint_every` updates in checkpoints/ppo/; rerunning resumes from the newest.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.data.formatting import policy_stop_token
from alignflow.io import staged_outputs, write_json
from alignflow.models.loading import load_pretrained
from alignflow.models.reward import RewardScorer
from alignflow.scale.launch import run_stage
from alignflow.scale.worker import checkpoint_saved
from alignflow.stages.common import cli, load_arrow, require
from alignflow.training.common import params_snapshot, prepare_checkpoint_dir
from alignflow.training.sft import trainable_policy

SAMPLES_LOGGED = 4


def run(params: Params) -> dict[str, Any]:
    inputs = (
        paths.TOKENIZED / "prompts",
        paths.TOKENIZED / "eval_prompts",
        paths.SFT_MODEL,
        paths.REWARD_MODEL,
        paths.JUDGE_MODEL,
    )
    return run_stage("ppo", train, params, inputs, (paths.POLICY, paths.metrics_file("ppo")))


def train(params: Params) -> dict[str, Any]:
    import mlflow
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from alignflow.evaluation.curve import AlignmentProbe
    from alignflow.rl.ppo import PolicyGradientTrainer, rng_state, set_rng_state, set_seed

    config, seed = params.ppo, params.common.seed
    prompts = load_arrow(paths.TOKENIZED / "prompts", "tokenize").to_list()
    tokenizer = load_pretrained(AutoTokenizer, require(paths.SFT_MODEL / "model", "sft"))
    scorer = RewardScorer(require(paths.REWARD_MODEL, "reward"), params.tokenize.reward_max_length)
    stop_token = policy_stop_token(params, tokenizer)
    checkpoints = paths.CHECKPOINTS / "ppo"
    resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, config, params.tokenize))
    set_seed(seed)  # the fresh adapter's initialisation is part of the run (unseeded, no two runs were alike)
    trainer = PolicyGradientTrainer(
        trainable_policy(require(paths.SFT_MODEL, "sft"), config.method, config.lora),
        tokenizer,
        scorer,
        prompts,
        config,
        stop_token,
        seed,
        scorer.stats,
    )
    main_process = trainer.accelerator.is_main_process
    probe = None
    if config.curve_every:
        curve_prompts = load_arrow(paths.TOKENIZED / "eval_prompts", "tokenize").to_list()[: config.curve_prompts]
        judge = RewardScorer(require(paths.JUDGE_MODEL, "reward"), params.tokenize.reward_max_length)
        probe = AlignmentProbe(
            tokenizer, curve_prompts, {"reward": scorer, "judge": judge}, trainer.stop_id, params.evaluate, seed
        )
        state = rng_state()
        with trainer.sampling_model(reference=True) as sft:
            probe.set_reference(sft)
        set_rng_state(state)
    samples: list[dict[str, Any]] = []
    run_here = []  # updates this process ran (not restored from a checkpoint)

    def log_update(update: int, stats: dict[str, float], texts: list[str]) -> None:
        run_here.append(update)
        if main_process:
            mlflow.log_metrics(stats, step=update)
            samples.extend({"update": update, "response": text} for text in texts[:SAMPLES_LOGGED])
            print(f"ppo update {update}/{config.updates}: " + ", ".join(f"{k}={v:.3f}" for k, v in stats.items()))

    with tracking.stage_run("ppo", params.common.experiment, section_dict(config)):
        started = time.monotonic()
        history = trainer.train(
            checkpoints, resume=resuming, on_update=log_update, probe=probe, on_checkpoint=checkpoint_saved
        )
        seconds = time.monotonic() - started
        lm, value_head = trainer.trained_model()
        last = history[-min(3, len(history)) :]
        metrics = {
            f"final_{key}": round(sum(h[key] for h in last) / len(last), 4)
            for key in ("reward_mean", "kl", "entropy", "response_length", "unfinished")
        }
        metrics.update(
            {f"final_{key}": round(value, 4) for key, value in history[-1].items() if key.startswith("curve_")}
        )
        metrics.update(updates=len(history), initial_reward_mean=round(history[0]["reward_mean"], 4))
        metrics.update(
            train_seconds=round(seconds, 1), episodes_per_second=round(len(run_here) * config.batch_size / seconds, 3)
        )
        if main_process:
            with staged_outputs(paths.POLICY, paths.metrics_file("ppo")) as (out_dir, metrics_path):
                lm.save_pretrained(out_dir, safe_serialization=True)
                tokenizer.save_pretrained(out_dir)
                save_file(
                    {k: v.contiguous() for k, v in value_head.state_dict().items()},
                    str(out_dir / "value_head.safetensors"),
                )
                write_json(out_dir / "ppo_history.json", history)
                write_json(metrics_path, metrics)
            mlflow.log_metrics(metrics)
            if samples:
                mlflow.log_table(
                    {"update": [s["update"] for s in samples], "response": [s["response"] for s in samples]},
                    "ppo_samples.json",
                )
    if main_process:
        shutil.rmtree(checkpoints, ignore_errors=True)
        print(f"ppo: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
