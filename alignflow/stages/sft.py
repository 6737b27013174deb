"""sft: supervised fine-tuning on data/tokenized/sft -> models/sft/ (merged model + tokenizer, adapter if any).

Run: `python -m alignflow.stages.sft` (`compute.backend: ray`: on Ray Train workers). An interrupted run
resumes from checkpoints/sft/ when rerun with the same params.
transformers is imported inside `train`, so that importing this module stays fast (on Ray only the workers train).
"""

from __future__ import annotations

import math
import shutil
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
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
    training_arguments,
)
from alignflow.training.packing import PackedCollator
from alignflow.training.sft import build_sft_model, save_sft_outputs, training_collator


def run(params: Params) -> dict[str, Any]:
    if params.sft.tuning == "none":  # nothing trains: no workers, no checkpoints
        return keep_base(params)
    inputs = (paths.TOKENIZED / "sft", paths.TOKENIZED / "tokenizer", paths.BASE_MODEL)
    return train_here_or_on_ray("sft", train, params, inputs, (paths.SFT_MODEL, paths.metrics_file("sft")))


def keep_base(params: Params) -> dict[str, Any]:
    """`tuning: none`: models/sft is the base model (with the tokenize stage's tokenizer), so a policy starts
    from the base as it would from a trained SFT model."""
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, require(paths.TOKENIZED / "tokenizer", "tokenize"))
    model = build_sft_model(require(paths.BASE_MODEL, "ingest"), tokenizer, params.sft)
    metrics = {"trained": False, "trainable_parameters": 0}
    with tracking.stage_run("sft", params.common.experiment, section_dict(params.sft)):
        with staged_outputs(paths.SFT_MODEL, paths.metrics_file("sft")) as (out_dir, metrics_path):
            save_sft_outputs(model, tokenizer, params.sft, paths.BASE_MODEL, out_dir)
            write_json(metrics_path, metrics)
    print(f"sft: {metrics} (tuning none: the base model is the SFT model)")
    return metrics


def train(params: Params) -> dict[str, Any]:
    from transformers import AutoTokenizer, Trainer, set_seed

    from alignflow.training.label_loss import LabelledPositionsTrainer

    config, seed = params.sft, params.common.seed
    data = load_arrow(paths.TOKENIZED / "sft", "tokenize").remove_columns("id")
    tokenizer = load_pretrained(AutoTokenizer, require(paths.TOKENIZED / "tokenizer", "tokenize"))
    checkpoints = paths.CHECKPOINTS / "sft"
    resuming = prepare_checkpoint_dir(
        checkpoints, params_snapshot(params.common, config, params.tokenize, params.ingest)
    )
    set_seed(seed)  # adapter / head initialisation is part of the run
    model = build_sft_model(require(paths.BASE_MODEL, "ingest"), tokenizer, config)
    has_eval = len(data["validation"]) > 0
    collator = training_collator(model, tokenizer, config)
    # prompt tuning prepends virtual tokens inside peft, so only the model's own loss lines its labels up
    trainer_class = Trainer if config.tuning == "prompt_tuning" else LabelledPositionsTrainer
    trainer = trainer_class(
        model=model,
        args=training_arguments(config, checkpoints, seed, has_eval, prediction_loss_only=True),
        train_dataset=data["train"],
        eval_dataset=data["validation"] if has_eval else None,
        data_collator=collator,
        callbacks=[mlflow_callback(), checkpoint_callback()],
    )

    with tracking.stage_run("sft", params.common.experiment, section_dict(config)):
        result = trainer.train(resume_from_checkpoint=last_checkpoint(checkpoints) if resuming else None)
        metrics: dict[str, Any] = {
            **trainer_metrics(trainer, result),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "packed": isinstance(collator, PackedCollator),
        }
        if has_eval:
            eval_loss = trainer.evaluate()["eval_loss"]
            metrics.update(eval_loss=round(eval_loss, 4), eval_perplexity=round(math.exp(min(eval_loss, 50)), 2))
        if tracking.is_main_process():
            with staged_outputs(paths.SFT_MODEL, paths.metrics_file("sft")) as (out_dir, metrics_path):
                save_sft_outputs(trainer.model, tokenizer, config, paths.BASE_MODEL, out_dir)
                write_json(metrics_path, metrics)
        tracking.log_metrics({f"final_{k}": v for k, v in metrics.items()})
    if tracking.is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)
        print(f"sft: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
