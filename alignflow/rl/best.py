"""Keep the best update, not the last: the policy's dev-split score picks it (OpenRLHF's
`--ckpt.best_metric_key`, open-instruct's best checkpoint). The score is the reward model's win rate against SFT,
or the verifiers' mean when they alone reward the policy: a pick by the reward model would then rank updates by a
scorer the policy never trained against.

The probe that measures it samples prompts held out of PPO's own pool, never the eval prompts, so the pick does
not tune on the set that judges the result. The best update's trainable weights are held in memory (a LoRA
adapter is small; with `ppo.tuning: full` it is a copy of the model) and written into every checkpoint, so a
resumed run keeps the same pick.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

BEST_WEIGHTS, BEST_STATE = "best.safetensors", "best.json"
WIN_RATE, VERIFIERS = "curve_win_rate", "curve_verifiers"
"""The probe's numbers that can rank the updates (alignflow.evaluation.curve.AlignmentProbe)."""


def ranking_metric(reward_model_weight: float, has_verifiers: bool) -> str:
    """The dev-split number that ranks the updates: what the policy's reward is made of."""
    return VERIFIERS if has_verifiers and not reward_model_weight else WIN_RATE


@dataclass
class BestUpdate:
    metric: str = WIN_RATE
    """The probe's number that ranks the updates (`ranking_metric`)."""
    update: int = 0
    score: float = -math.inf
    weights: dict[str, torch.Tensor] | None = None

    def consider(self, update: int, stats: Mapping[str, float], weights: Callable[[], dict[str, torch.Tensor]]) -> None:
        """Hold `weights()` when this update's score beats every earlier one (the earliest of equals stays)."""
        score = stats.get(self.metric)
        if score is not None and score > self.score:
            self.update, self.score, self.weights = update, float(score), weights()

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        if self.weights is not None:
            save_file(self.weights, str(directory / BEST_WEIGHTS))
            (directory / BEST_STATE).write_text(json.dumps({"update": self.update, "score": self.score}))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        if (directory / BEST_STATE).is_file():
            state = json.loads((directory / BEST_STATE).read_text())
            self.update, self.score = state["update"], state["score"]
            self.weights = load_file(str(directory / BEST_WEIGHTS))
