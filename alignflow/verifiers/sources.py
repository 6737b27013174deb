"""Reward sources for the online methods: the learned reward model, named verifiers, or a weighted sum of both.

A verifier is a built-in (`alignflow.verifiers.checks`) or a function of the user's, named by dotted path
`package.module:function` and called as `function(response, record, **options)` -> float in [0, 1] or None
(nothing to check on this record); `alignflow.config.resolve_verifier` resolves it when the params load, so a typo
fails before any training with one line naming the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alignflow.config import VerifierParams, resolve_verifier

Verifier = Callable[[str, Mapping[str, Any]], "float | None"]


@dataclass(frozen=True)
class RewardSources:
    """The reward model's weight and the verifiers beside it, resolved."""

    reward_model_weight: float
    verifiers: tuple[tuple[str, float, Verifier], ...]
    """(source name, weight, check) per verifier; names are unique (`regex`, `regex_2`, ...)."""

    @classmethod
    def load(cls, reward_model_weight: float, specs: Sequence[VerifierParams], where: str) -> RewardSources:
        named, seen = [], {}
        for index, spec in enumerate(specs):
            base = spec.name.rpartition(":")[2]
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}_{seen[base]}"
            named.append((name, spec.weight, resolve_verifier(spec, f"{where}.verifiers[{index}]")))
        return cls(reward_model_weight, tuple(named))

    def score(self, responses: Sequence[str], records: Sequence[Mapping[str, Any]]) -> dict[str, list[float | None]]:
        """Each verifier's reward per response (None: nothing to check on that prompt)."""
        scores = {}
        for name, _, check in self.verifiers:
            values = [check(response, record) for response, record in zip(responses, records, strict=True)]
            scores[name] = [None if value is None else float(value) for value in values]
        return scores

    def mix(self, model_rewards: Sequence[float] | None, verified: Mapping[str, Sequence[float | None]]) -> list[float]:
        """The policy's reward per response: the weighted sum of the sources that apply to it."""
        weights = {name: weight for name, weight, _ in self.verifiers}
        count = len(model_rewards) if model_rewards is not None else len(next(iter(verified.values())))
        total = [self.reward_model_weight * r for r in model_rewards] if model_rewards is not None else [0.0] * count
        for name, values in verified.items():
            total = [t + (0.0 if v is None else weights[name] * v) for t, v in zip(total, values, strict=True)]
        return total


def source_means(verified: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """Each verifier's mean reward over the responses it checked: one step metric per source."""
    means = {}
    for name, values in verified.items():
        checked = [v for v in values if v is not None]
        if checked:
            means[f"verifier_{name}"] = sum(checked) / len(checked)
    return means
