"""Reward model: a scalar-head sequence classifier trained with TRL's RewardTrainer on (chosen, rejected, margin).

Loss: -logsigmoid(r_chosen - r_rejected - margin), margin = margin_scale * score gap (0 when unscored).
The same `reward_inputs` encoding is used for training and for scoring in PPO and evaluation.
transformers and trl are imported inside the functions that train or build a model, so that importing this module
stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alignflow.models.loading import load_pretrained
from alignflow.models.reward import REWARD_STATS, score_ids
from alignflow.training.common import train_with_plain_attention, training_arguments

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel
    from transformers.trainer_utils import TrainOutput
    from trl import RewardTrainer


def with_margins(dataset: Dataset, margin_scale: float) -> Dataset:
    """Keep what RewardTrainer reads: chosen_ids, rejected_ids and a margin column."""
    dataset = dataset.map(lambda row: {"margin": margin_scale * (row["score_gap"] or 0.0)})
    return dataset.select_columns(["chosen_ids", "rejected_ids", "margin"])


def train_reward_model(
    backbone: Path,
    tokenizer,
    train,
    validation,
    params,
    output_dir: Path,
    seed: int,
    resume_from: str | None = None,
    callbacks=(),
) -> tuple[RewardTrainer, TrainOutput]:
    """Train a reward model with TRL's RewardTrainer; returns (trainer, train result)."""
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    set_seed(seed)  # the head's initialisation is part of the run
    model = build_reward_model(backbone, tokenizer)
    has_eval = validation is not None and len(validation) > 0
    args = training_arguments(
        params,
        output_dir,
        seed,
        has_eval,
        cls=RewardConfig,
        max_length=None,
        gradient_checkpointing=params.gradient_checkpointing,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=with_margins(train, params.margin_scale),
        eval_dataset=with_margins(validation, params.margin_scale) if has_eval else None,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    return trainer, trainer.train(resume_from_checkpoint=resume_from)


def build_reward_model(backbone_dir: Path, tokenizer) -> PreTrainedModel:
    from transformers import AutoModelForSequenceClassification

    model = load_pretrained(AutoModelForSequenceClassification, backbone_dir, num_labels=1)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return train_with_plain_attention(model)


def save_reward_model(model, tokenizer, out_dir: Path, stats: dict[str, float], max_length: int) -> None:
    """Model + tokenizer + the score statistics and input length that scoring must reuse."""
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (Path(out_dir) / REWARD_STATS).write_text(
        json.dumps({"mean": stats["mean"], "std": stats["std"], "max_length": max_length})
    )


def evaluate_pairs(model, tokenizer, dataset) -> dict[str, Any]:
    """Pairwise accuracy (overall and per rejected-response category) and score statistics on a pair dataset."""
    chosen = score_ids(model, tokenizer, dataset["chosen_ids"])
    rejected = score_ids(model, tokenizer, dataset["rejected_ids"])
    both = torch.cat([chosen, rejected])
    correct = (chosen > rejected).float()
    categories = dataset["category"] if "category" in dataset.column_names else ["unlabelled"] * len(chosen)
    by_category = {name: float(correct[[c == name for c in categories]].mean()) for name in sorted(set(categories))}
    return {
        "accuracy": float(correct.mean()) if len(chosen) else float("nan"),
        "accuracy_by_category": by_category,
        "mean": float(both.mean()),
        "std": float(both.std()) if len(both) > 1 else 1.0,
        "margin_mean": float((chosen - rejected).mean()) if len(chosen) else float("nan"),
    }


def pair_metrics(stats: dict[str, Any], prefix: str) -> dict[str, float]:
    """Flat metrics of `evaluate_pairs` on held-out pairs: accuracy, mean margin, accuracy per category."""
    return {
        f"{prefix}accuracy": round(stats["accuracy"], 4),
        f"{prefix}margin_mean": round(stats["margin_mean"], 4),
        **{f"{prefix}accuracy_{name}": round(value, 4) for name, value in stats["accuracy_by_category"].items()},
    }
