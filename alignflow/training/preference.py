"""Offline preference optimisation with TRL's trainers: DPO and IPO (DPOTrainer), KTO (KTOTrainer), SimPO (CPO).

Each method trains the SFT model (a fresh LoRA adapter by default; the reference is the same model with the adapter
switched off) on the reward model's training comparison groups, laid out in the policy's chat format as SFT and
sampling see them. TRL owns the losses; this module maps our pairs onto TRL's dataset formats and our params onto
TRL's configs. transformers and trl are imported inside the functions, so that importing this module stays fast.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow.config import KTOParams, PreferenceParams, SimPOParams
from alignflow.data.formatting import ChatFormat, conversation, prompt_turns
from alignflow.errors import ConfigError
from alignflow.training.common import training_arguments
from alignflow.training.sft import lora_config, mergeable_sft_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer
    from transformers.trainer_utils import TrainOutput

LOSS_TYPES = {"dpo": "sigmoid", "ipo": "ipo", "simpo": "simpo"}
"""TRL's loss_type per method that shares a trainer."""

HISTORY_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")
"""What the training history keeps of TRL's log lines (plotted by evaluate, one panel per key)."""


def preference_examples(pairs: Sequence[dict[str, Any]], tokenizer, chat: ChatFormat, stop: str) -> list[dict]:
    """TRL's paired preference format: conversational (TRL applies the chat template, as SFT rendered the
    conversations) with `template: chat`, else plain strings that end with the stop marker, as SFT taught."""

    def reply(text: str) -> list[dict[str, str]] | str:
        return [{"role": "assistant", "content": text}] if chat.template == "chat" else text + stop

    examples = []
    for pair in pairs:
        prompt = conversation(pair)
        examples.append(
            {
                "prompt": prompt_turns(prompt) if chat.template == "chat" else chat.prompt(tokenizer, prompt),
                "chosen": reply(pair["chosen"]),
                "rejected": reply(pair["rejected"]),
            }
        )
    return examples


def unpaired_examples(examples: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """KTO's unpaired format from pairs: each distinct (prompt, response) once, desirable when the pairs prefer it
    more often than they reject it, undesirable for the reverse; a response preferred as often as rejected (the
    middle of a scored group) says nothing either way and is left out. Shuffled with `seed`: KTO reads them in order."""
    votes: dict[tuple[str, str], int] = collections.Counter()
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for example in examples:
        for side, vote in (("chosen", 1), ("rejected", -1)):
            key = (repr(example["prompt"]), repr(example[side]))
            votes[key] += vote
            first.setdefault(key, {"prompt": example["prompt"], "completion": example[side]})
    unpaired = [{**first[key], "label": count > 0} for key, count in votes.items() if count]
    random.Random(seed).shuffle(unpaired)
    return unpaired


def check_training_data(method: str, examples: Sequence[dict[str, Any]], source: str) -> None:
    """One line naming what to change when the method has nothing (or only one kind of label) to learn from."""
    if not examples:
        raise ConfigError(
            f"align.method: {method}: {source} holds no training comparisons once the judge's and validation "
            "groups are set aside; lower tokenize.judge_fraction or tokenize.comparison_validation_fraction, or add "
            "comparisons"
        )
    if method == "kto":
        labels = {example["label"] for example in examples}
        if labels != {True, False}:
            missing = "undesirable" if True in labels else "desirable"
            raise ConfigError(
                f"align.method: kto: {source} gives no {missing} responses (KTO needs both labels); use dpo, or add "
                "comparisons whose responses differ in score"
            )


def train_preference(
    method: str,
    sft_dir: Path,
    tokenizer,
    examples: list[dict[str, Any]],
    config: PreferenceParams,
    max_length: int,
    output_dir: Path,
    seed: int,
    resume_from: str | None = None,
    callbacks=(),
) -> tuple[Trainer, TrainOutput]:
    """Train the SFT model with `method`'s TRL trainer on `examples` (unpaired for kto); returns (trainer, result)."""
    from datasets import Dataset
    from transformers import set_seed

    set_seed(seed)  # the fresh adapter's initialisation is part of the run
    model = mergeable_sft_model(sft_dir, "align")
    peft_config = lora_config(model, config.lora, "CAUSAL_LM") if config.tuning == "lora" else None
    trainer_class, config_class, extra = _trainer(method, config, max_length)
    args = training_arguments(config, output_dir, seed, has_eval=False, cls=config_class, **extra)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    return trainer, trainer.train(resume_from_checkpoint=resume_from)


def _trainer(method: str, config: PreferenceParams, max_length: int) -> tuple[type, type, dict[str, Any]]:
    """(trainer class, its config class, the method's own config values)."""
    common = {"beta": config.beta, "max_length": max_length}
    if isinstance(config, KTOParams):
        from trl import KTOConfig, KTOTrainer

        weights = {"desirable_weight": config.desirable_weight, "undesirable_weight": config.undesirable_weight}
        # KTO's KL term pairs each example with its neighbours in a fixed-order batch: `unpaired_examples` are
        # shuffled with the seed instead
        return KTOTrainer, KTOConfig, {**common, **weights, "train_sampling_strategy": "sequential"}
    if isinstance(config, SimPOParams):
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        simpo = {
            "loss_type": LOSS_TYPES[method],
            "cpo_alpha": config.chosen_nll_weight,
            "simpo_gamma": config.gamma_beta_ratio,
        }
        return CPOTrainer, CPOConfig, {**common, **simpo}
    from trl import DPOConfig, DPOTrainer

    if config.chosen_nll_weight:  # RPO: the preference loss plus the chosen answers' NLL
        losses = {"loss_type": [LOSS_TYPES[method], "sft"], "loss_weights": [1.0, config.chosen_nll_weight]}
        return DPOTrainer, DPOConfig, {**common, **losses}
    return DPOTrainer, DPOConfig, {**common, "loss_type": [LOSS_TYPES[method]]}


def training_history(log_history: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """One entry per logged training step: step and the HISTORY_KEYS TRL logged ('/' becomes '_')."""
    return [
        {"step": entry["step"], **{key.replace("/", "_"): entry[key] for key in HISTORY_KEYS if key in entry}}
        for entry in log_history
        if "loss" in entry
    ]


def merged_policy(model) -> PreTrainedModel:
    """The trained policy as a plain model: the adapter folded into the weights (nothing to fold for `full`)."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model
