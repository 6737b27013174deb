"""reward: train the reward model on data/tokenized/reward -> models/reward/ (+ score statistics for PPO).

Run: `python -m alignflow.stages.reward`. Backbone from params: the sentence encoder (default) or the
SFT model with a classification head. Interrupted runs resume from checkpoints/reward/.
"""
from __future__ import annotations

import json
import shutil
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.io import staged_outputs, write_json
from alignflow.stages.common import cli, load_arrow, require
from alignflow.training.common import (last_checkpoint, mlflow_callback, params_snapshot, prepare_checkpoint_dir,
                                       training_arguments)
from alignflow.training.reward import REWARD_STATS, build_reward_model, evaluate_pairs, with_margins


def run(params: Params) -> dict[str, Any]:
    from transformers import AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    config, seed = params.reward, params.common.seed
    pairs = load_arrow(paths.TOKENIZED / "reward", "tokenize")
    backbone = (require(paths.ENCODER, "ingest") if config.backbone == "encoder"
                else require(paths.SFT_MODEL / "model", "sft"))
    tokenizer = AutoTokenizer.from_pretrained(backbone if config.backbone == "encoder" else paths.TOKENIZED / "tokenizer")
    checkpoints = paths.CHECKPOINTS / "reward"
    resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, config, params.tokenize))
    set_seed(seed)  # adapter / head initialisation is part of the run
    model = build_reward_model(backbone, tokenizer)
    has_eval = len(pairs["validation"]) > 0
    args = training_arguments(config, checkpoints, seed, has_eval, cls=RewardConfig, max_length=None)
    trainer = RewardTrainer(model=model, args=args, train_dataset=with_margins(pairs["train"], config.margin_scale),
                            eval_dataset=with_margins(pairs["validation"], config.margin_scale) if has_eval else None,
                            processing_class=tokenizer, callbacks=[mlflow_callback()])

    with tracking.stage_run("reward", params.common.experiment, section_dict(config)):
        import mlflow

        result = trainer.train(resume_from_checkpoint=last_checkpoint(checkpoints) if resuming else None)
        train_stats = evaluate_pairs(trainer.model, tokenizer, pairs["train"])
        metrics: dict[str, Any] = {"train_loss": round(result.training_loss, 4), "steps": result.global_step,
                                   "train_seconds": round(result.metrics["train_runtime"], 1),
                                   "train_accuracy": round(train_stats["accuracy"], 4),
                                   "reward_mean": round(train_stats["mean"], 4), "reward_std": round(train_stats["std"], 4)}
        if has_eval:
            held_out = evaluate_pairs(trainer.model, tokenizer, pairs["validation"])
            metrics.update(eval_accuracy=round(held_out["accuracy"], 4), eval_margin_mean=round(held_out["margin_mean"], 4))
        with staged_outputs(paths.REWARD_MODEL, paths.metrics_file("reward")) as (out_dir, metrics_path):
            trainer.model.save_pretrained(out_dir, safe_serialization=True)
            tokenizer.save_pretrained(out_dir)
            (out_dir / REWARD_STATS).write_text(json.dumps({"mean": train_stats["mean"], "std": train_stats["std"],
                                                            "max_length": params.tokenize.reward_max_length}))
            write_json(metrics_path, metrics)
        mlflow.log_metrics({f"final_{k}": v for k, v in metrics.items()})
    shutil.rmtree(checkpoints, ignore_errors=True)
    print(f"reward: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
