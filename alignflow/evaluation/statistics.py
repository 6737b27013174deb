"""Paired bootstrap intervals for a candidate vs a baseline scored on the same prompts (pure numpy).

Resampling prompt indices keeps each (candidate, baseline) pair together, so the interval reflects how the
per-prompt comparison varies across prompts, which is what a promotion decision has to trust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def paired_scores(candidate: Sequence[float], baseline: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Both score lists as float arrays, checked to be one finite score per prompt for each model."""
    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"expected one score per prompt (1-D), found shapes {a.shape} and {b.shape}")
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no scores to compare: candidate and baseline need at least one prompt each")
    if len(a) != len(b):
        raise ValueError(f"candidate has {len(a)} scores but baseline has {len(b)}: score both on the same prompts")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite (found NaN or inf): check the scorer's outputs")
    return a, b


def prompt_wins(candidate: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    """Per-prompt outcome for the candidate: 1 win, 0.5 tie, 0 loss; the one tie rule every win rate uses."""
    a, b = paired_scores(candidate, baseline)
    return (a > b) + 0.5 * (a == b)


def paired_win_rate(
    candidate: Sequence[float],
    baseline: Sequence[float],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Share of prompts the candidate wins (ties half), with a percentile bootstrap interval over prompts."""
    return bootstrap_mean(prompt_wins(candidate, baseline), resamples, confidence, seed)


def paired_mean_difference(
    candidate: Sequence[float],
    baseline: Sequence[float],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """mean(candidate - baseline) per prompt, with a percentile bootstrap interval over prompts."""
    a, b = paired_scores(candidate, baseline)
    return bootstrap_mean(a - b, resamples, confidence, seed)


def bootstrap_mean(per_prompt: np.ndarray, resamples: int, confidence: float, seed: int) -> dict[str, float]:
    """Mean of a per-prompt quantity and its percentile interval from one (resamples, n) index draw."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(per_prompt, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-prompt values, found shape {values.shape}")
    indices = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    means = values[indices].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"value": float(values.mean()), "ci_low": float(low), "ci_high": float(high)}


def interval_metrics(prefix: str, result: dict[str, float]) -> dict[str, float]:
    """Flat metric keys for an interval: `prefix`, `prefix_ci_low`, `prefix_ci_high` (what the gate reads)."""
    return {
        prefix: round(result["value"], 4),
        f"{prefix}_ci_low": round(result["ci_low"], 4),
        f"{prefix}_ci_high": round(result["ci_high"], 4),
    }


def format_interval(metrics: Mapping[str, Any], key: str) -> str:
    """`value [low, high]` when `metrics` carries `<key>_ci_low` and `<key>_ci_high`, else the bare value."""
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    return f"{metrics.get(key)} [{low}, {high}]" if low is not None and high is not None else str(metrics.get(key))
