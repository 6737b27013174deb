"""A saved reward model as a scoring function: (prompts, responses) -> one scalar each, encoded as in training.

Inference only, so serving (registry/pyfunc.py), PPO and evaluation score without importing the training code.
transformers is imported when a scorer is created, so that importing this module stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from alignflow.data.formatting import Prompt, reward_inputs
from alignflow.models.loading import load_pretrained

REWARD_STATS = "reward_stats.json"
"""Mean/std of the trained model's scores on training responses, used by PPO to normalise rewards."""


@torch.no_grad()
def score_ids(model, tokenizer, sequences: Sequence[Sequence[int]], batch_size: int = 32) -> torch.Tensor:
    """Scalar rewards for already-encoded inputs, right-padded per batch."""
    model.eval()
    scores = []
    for start in range(0, len(sequences), batch_size):
        batch = tokenizer.pad(
            {"input_ids": [list(s) for s in sequences[start : start + batch_size]]}, return_tensors="pt"
        )
        scores.append(model(**batch).logits[:, 0].float())
    return torch.cat(scores) if scores else torch.zeros(0)


class RewardScorer:
    """Scores (prompt, response) texts with a saved reward model, encoding them as in training."""

    def __init__(self, model_dir: Path, max_length: int):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = load_pretrained(AutoTokenizer, model_dir)
        self.model = load_pretrained(AutoModelForSequenceClassification, model_dir).eval()
        self.max_length = max_length
        stats_file = Path(model_dir) / REWARD_STATS
        self.stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {"mean": 0.0, "std": 1.0}

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> torch.Tensor:
        encoded = [
            reward_inputs(self.tokenizer, p, r, self.max_length)["input_ids"] for p, r in zip(prompts, responses)
        ]
        return score_ids(self.model, self.tokenizer, encoded)
