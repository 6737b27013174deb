"""Paired comparison of scored generations: the policy against SFT and SFT best-of-n, by each scorer.

Every claim is a paired bootstrap interval over prompts (same prompts, same seeds for both sides), so the
gate can read a lower bound instead of a point estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignflow.evaluation.metrics import preference_agreement, summary
from alignflow.evaluation.statistics import (
    interval_metrics,
    length_controlled_win_rate,
    paired_mean_difference,
    paired_win_rate,
)

SCORER_PREFIXES = {"reward": "", "judge": "judge_"}
"""Metric-name prefix per scorer: the reward model's metrics are unprefixed (win_rate_policy_vs_sft, ...)."""


def best_of_n(candidates: Sequence[Sequence[str]], scores: Sequence[Sequence[float]]) -> tuple[list[str], list[int]]:
    """Per prompt, the candidate the scorer rates highest (first on ties) and its index."""
    picks = [int(np.argmax(row)) for row in scores]
    return [texts[i] for texts, i in zip(candidates, picks)], picks


def compare(
    candidate: Sequence[float], baseline: Sequence[float], names: tuple[str, str], seed: int, prefix: str = ""
) -> dict[str, float]:
    """win_rate_<a>_vs_<b> and reward_diff_<a>_<b>, each with a 95 % paired bootstrap interval."""
    a, b = names
    metrics = interval_metrics(f"{prefix}win_rate_{a}_vs_{b}", paired_win_rate(candidate, baseline, seed=seed))
    metrics.update(
        interval_metrics(f"{prefix}reward_diff_{a}_{b}", paired_mean_difference(candidate, baseline, seed=seed))
    )
    return metrics


def comparison_metrics(
    scores: dict[str, dict[str, list[float]]], seed: int, lengths: dict[str, list[int]] | None = None
) -> dict[str, float]:
    """All headline comparisons from scores[scorer][model] (models: sft, policy and optionally bon), and with
    `lengths[model]` (response tokens per prompt) the length-controlled win rate of the policy vs SFT.

    Best-of-n is usually scored on a prefix of the prompts (it costs n samples each): its comparisons use
    that prefix of the other models' scores.
    """
    metrics: dict[str, float] = {}
    for scorer, by_model in scores.items():
        prefix = SCORER_PREFIXES[scorer]
        for model, values in by_model.items():
            metrics.update(summary(values, f"{prefix}reward_{model}"))
        metrics.update(compare(by_model["policy"], by_model["sft"], ("policy", "sft"), seed, prefix))
        if lengths:
            lc = length_controlled_win_rate(
                by_model["policy"], by_model["sft"], lengths["policy"], lengths["sft"], seed=seed
            )
            metrics.update(interval_metrics(f"{prefix}lc_win_rate_policy_vs_sft", lc))
        if "bon" in by_model:
            count = len(by_model["bon"])
            for model in ("policy", "sft"):
                metrics.update(compare(by_model[model][:count], by_model["bon"], (model, "bon"), seed, prefix))
    if "judge" in scores:
        reward, judge = scores["reward"], scores["judge"]
        metrics["judge_agreement"] = preference_agreement(
            reward["policy"], reward["sft"], judge["policy"], judge["sft"]
        )
    return metrics
