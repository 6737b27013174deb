"""Pure comparisons of two models' scored generations: summaries, win rate, judge agreement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignflow.evaluation.statistics import prompt_wins


def summary(values: Sequence[float], prefix: str) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {
        f"{prefix}_mean": round(float(array.mean()), 4),
        f"{prefix}_std": round(float(array.std()), 4),
        f"{prefix}_median": round(float(np.median(array)), 4),
    }


def win_rate(candidate: Sequence[float], baseline: Sequence[float]) -> float:
    """Share of prompts where the candidate's score beats the baseline's (ties count half, as in statistics)."""
    return round(float(prompt_wins(candidate, baseline).mean()), 4)


def preference_agreement(
    reward_a: Sequence[float], reward_b: Sequence[float], judge_a: Sequence[float], judge_b: Sequence[float]
) -> float:
    """Share of prompts where the judge prefers the same response (a or b) as the reward model."""
    reward = np.sign(np.asarray(reward_a, dtype=float) - np.asarray(reward_b, dtype=float))
    judge = np.sign(np.asarray(judge_a, dtype=float) - np.asarray(judge_b, dtype=float))
    return round(float(np.mean(reward == judge)), 4)
