"""reward: train the reward model and the evaluation judge -> models/reward/, models/judge/ (+ score statistics).

Run: `python -m alignflow.stages.reward`. Both read the same backbone (the sentence encoder by default,
or the SFT model) and loss; the reward model trains on the `train` comparison groups, the judge on the
`judge` groups it never sees, and both are measured on `validation` groups neither saw (overall and per
quality category). Interrupted runs resume from checkpoints/reward/ and checkpoints/judge/.
transformers is imported inside `train`, so that importing this module stays fast (on Ray only the workers train).
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.errors import ConfigError
from alignflow.io import staged_outputs, write_json
from alignflow.models.loading import load_pretrained
from alignflow.scale.launch import train_here_or_on_ray
from alignflow.scale.worker import checkpoint_callback
from alignflow.stages.common import cli, load_arrow, require
from alignflow.training.common import (
    last_checkpoint,
    mlflow_callback,
    params_snapshot,
    prepare_checkpoint_dir,
    trainer_metrics,
)
from alignflow.training.reward import evaluate_pairs, pair_metrics, save_reward_model, train_reward_model


def run(params: Params) -> dict[str, Any]:
    backbone = paths.reward_backbone(params.reward.backbone)[0]
    inputs = (paths.TOKENIZED / "reward", paths.TOKENIZED / "tokenizer", backbone)
    outputs = (paths.REWARD_MODEL, paths.JUDGE_MODEL, paths.metrics_file("reward"))
    return train_here_or_on_ray("reward", train, params, inputs, outputs)


def train(params: Params) -> dict[str, Any]:
    from transformers import AutoTokenizer

    config, seed = params.reward, params.common.seed
    pairs = load_arrow(paths.TOKENIZED / "reward", "tokenize")
    backbone = require(paths.reward_backbone(config.backbone)[1], "ingest" if config.backbone == "encoder" else "sft")
    tokenizer = load_pretrained(AutoTokenizer, backbone)
    judge_config = dataclasses.replace(config, max_steps=config.judge_max_steps or config.max_steps)
    if "judge" not in pairs or not len(pairs["judge"]):
        raise ConfigError(
            "tokenize.judge_fraction: no comparison groups are left for the evaluation judge; set it "
            "above 0 (e.g. 0.25) and rerun tokenize"
        )
    jobs = [("reward", "", pairs["train"], config, seed), ("judge", "judge_", pairs["judge"], judge_config, seed + 1)]
    metrics: dict[str, Any] = {"eval_pairs": len(pairs["validation"])}
    trained = {}
    with tracking.stage_run("reward", params.common.experiment, section_dict(config)):
        for name, prefix, train_pairs, job_config, job_seed in jobs:
            checkpoints = paths.CHECKPOINTS / name
            resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, job_config, params.tokenize))
            trainer, result = train_reward_model(
                backbone,
                tokenizer,
                train_pairs,
                pairs["validation"],
                job_config,
                checkpoints,
                job_seed,
                last_checkpoint(checkpoints) if resuming else None,
                [mlflow_callback(prefix), checkpoint_callback()],
            )
            model = trainer.model.float()
            train_stats = evaluate_pairs(model, tokenizer, train_pairs)
            metrics.update({f"{prefix}{k}": v for k, v in trainer_metrics(trainer, result).items()})
            metrics.update(
                {
                    f"{prefix}train_accuracy": round(train_stats["accuracy"], 4),
                    f"{prefix}reward_mean": round(train_stats["mean"], 4),
                    f"{prefix}reward_std": round(train_stats["std"], 4),
                }
            )
            if len(pairs["validation"]):
                metrics.update(pair_metrics(evaluate_pairs(model, tokenizer, pairs["validation"]), f"{prefix}eval_"))
            trained[name] = (model, train_stats)
        if tracking.is_main_process():
            with staged_outputs(paths.REWARD_MODEL, paths.JUDGE_MODEL, paths.metrics_file("reward")) as outs:
                *model_dirs, metrics_path = outs
                for (model, stats), out_dir in zip(trained.values(), model_dirs):
                    save_reward_model(model, tokenizer, out_dir, stats, params.tokenize.reward_max_length)
                write_json(metrics_path, metrics)
        tracking.log_metrics({f"final_{k}": v for k, v in metrics.items()})
    if tracking.is_main_process():
        for name in trained:
            shutil.rmtree(paths.CHECKPOINTS / name, ignore_errors=True)
        print(f"reward: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
