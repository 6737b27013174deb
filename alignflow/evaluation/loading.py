"""What the baseline and evaluate stages load: the held-out prompts, a model in evaluation's dtype, the scorers,
and the measures of one model alone (held-out loss, multiple-choice accuracy).

transformers is imported inside the functions, so that importing this module (as Ray workers do) stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow import paths
from alignflow.config import Params
from alignflow.data.formatting import ChatFormat, policy_stop_token
from alignflow.evaluation.likelihood import held_out_loss, multiple_choice_accuracy, read_multiple_choice
from alignflow.models.loading import load_pretrained
from alignflow.models.reward import RewardScorer
from alignflow.precision import weights_dtype
from alignflow.progress import progress
from alignflow.stages.common import load_arrow, require
from alignflow.training.sft import load_sft_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def eval_prompts(params: Params) -> list[dict[str, Any]]:
    prompts = load_arrow(paths.TOKENIZED / "eval_prompts", "tokenize").to_list()
    return prompts[: params.evaluate.max_prompts or None]


def load_tokenizer(params: Params, folder: Path) -> tuple[PreTrainedTokenizerBase, int]:
    """(the policy tokenizer saved in `folder`, the id of the token that ends a reply)."""
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, folder)
    return tokenizer, tokenizer.convert_tokens_to_ids(policy_stop_token(params, tokenizer))


def load_model(params: Params, name: str, policy_dir: Path = paths.POLICY) -> PreTrainedModel:
    """`sft` (merged from models/sft), `base` (models/base) or `policy` (from `policy_dir`), in `evaluate.dtype`."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, weights_dtype("evaluate.dtype", params.evaluate.dtype))
    if name == "sft":
        return load_sft_model(require(paths.SFT_MODEL, "sft")).to(dtype)
    if name == "base":
        return load_pretrained(AutoModelForCausalLM, require(paths.BASE_MODEL, "ingest"), dtype=dtype)
    return load_pretrained(AutoModelForCausalLM, require(policy_dir, "align"), dtype=dtype)


def load_scorers(params: Params) -> dict[str, RewardScorer]:
    """The reward model and the judge (trained on comparison groups the reward model never saw)."""
    length = params.tokenize.reward_max_length
    return {
        "reward": RewardScorer(require(paths.REWARD_MODEL, "reward"), length),
        "judge": RewardScorer(require(paths.JUDGE_MODEL, "reward"), length),
    }


def model_metrics(params: Params, name: str, model, tokenizer) -> dict[str, float]:
    """heldout_loss_<name> and heldout_perplexity_<name> on SFT's validation split, and mc_accuracy_<name> when
    `evaluate.multiple_choice` names a file."""
    metrics: dict[str, float] = {}
    held_out = load_arrow(paths.TOKENIZED / "sft", "tokenize")["validation"]
    if len(held_out):
        loss = held_out_loss(model, tokenizer, held_out)
        metrics.update({f"heldout_loss_{name}": loss["loss"], f"heldout_perplexity_{name}": loss["perplexity"]})
        progress(f"held-out loss of {name} measured")
    if params.evaluate.multiple_choice:
        chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
        items = read_multiple_choice(Path(params.evaluate.multiple_choice))
        metrics[f"mc_accuracy_{name}"] = multiple_choice_accuracy(
            model, tokenizer, items, lambda q: chat.prompt(tokenizer, q)
        )
        progress(f"multiple-choice accuracy of {name} measured")
    return metrics
