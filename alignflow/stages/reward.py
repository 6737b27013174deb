"""reward: train the reward model on data/tokenized/reward -> models/reward/ (+ score statistics for PPO).

Run: `python -m alignflow.stages.reward`. Backbone from params: the sentence encoder (default) or the
SFT model with a classification head. Interrupted runs resume from checkpoints/reward/.
"""
from __future__ import annotations

import shutil
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.io import staged_outputs, write_json
from alignflow.stages.common import cli, load_arrow, reward_backbone
from alignflow.training.common import (last_checkpoint, mlflow_callback, params_snapshot, prepare_checkpoint_dir,
                                       trainer_metrics)
from alignflow.training.reward import evaluate_pairs, save_reward_model, train_reward_model


def run(params: Params) -> dict[str, Any]:
    config, seed = params.reward, params.common.seed
    pairs = load_arrow(paths.TOKENIZED / "reward", "tokenize")
    backbone, tokenizer = reward_backbone(params)
    checkpoints = paths.CHECKPOINTS / "reward"
    resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, config, params.tokenize))

    with tracking.stage_run("reward", params.common.experiment, section_dict(config)):
        import mlflow

        trainer, result = train_reward_model(backbone, tokenizer, pairs["train"], pairs["validation"], config, checkpoints,
                                             seed, last_checkpoint(checkpoints) if resuming else None, [mlflow_callback()])
        train_stats = evaluate_pairs(trainer.model, tokenizer, pairs["train"])
        metrics: dict[str, Any] = {**trainer_metrics(result), "train_accuracy": round(train_stats["accuracy"], 4),
                                   "reward_mean": round(train_stats["mean"], 4), "reward_std": round(train_stats["std"], 4)}
        if len(pairs["validation"]):
            held_out = evaluate_pairs(trainer.model, tokenizer, pairs["validation"])
            metrics.update(eval_accuracy=round(held_out["accuracy"], 4), eval_margin_mean=round(held_out["margin_mean"], 4))
        with staged_outputs(paths.REWARD_MODEL, paths.metrics_file("reward")) as (out_dir, metrics_path):
            save_reward_model(trainer.model, tokenizer, out_dir, train_stats, params.tokenize.reward_max_length)
            write_json(metrics_path, metrics)
        mlflow.log_metrics({f"final_{k}": v for k, v in metrics.items()})
    shutil.rmtree(checkpoints, ignore_errors=True)
    print(f"reward: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
