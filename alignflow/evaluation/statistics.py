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
    values = np.asarray(per_prompt, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-prompt values, found shape {values.shape}")
    means = values[resample_indices(len(values), resamples, confidence, seed)].mean(axis=1)
    return {"value": float(values.mean()), **percentile_interval(means, confidence)}


def resample_indices(count: int, resamples: int, confidence: float, seed: int) -> np.ndarray:
    """A (resamples, count) draw of prompt indices with replacement: the paired bootstrap every interval uses."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def percentile_interval(estimates: np.ndarray, confidence: float) -> dict[str, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return {"ci_low": float(low), "ci_high": float(high)}


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


def length_controlled_win_rate(
    candidate: Sequence[float],
    baseline: Sequence[float],
    candidate_lengths: Sequence[float],
    baseline_lengths: Sequence[float],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The win rate the candidate would have at equal length (AlpacaEval 2's length control), with a paired
    bootstrap interval over prompts.

    A logistic model of the per-prompt outcome (win 1, tie 0.5, loss 0) on the standardized length difference
    (candidate minus baseline, scaled by its standard deviation over prompts); the LC win rate is its prediction at
    zero difference. Both scorers here prefer longer answers, so a policy that wins by padding scores below its raw
    win rate. Each bootstrap resample refits the model on the same prompts' standardized differences.
    """
    wins = prompt_wins(candidate, baseline)
    difference = np.asarray(candidate_lengths, dtype=float) - np.asarray(baseline_lengths, dtype=float)
    if difference.shape != wins.shape:
        raise ValueError(f"expected one length per prompt for both models ({len(wins)}), found {difference.shape}")
    spread = difference.std()
    x = difference / spread if spread > 0 else np.zeros_like(difference)
    indices = resample_indices(len(wins), resamples, confidence, seed)
    fitted = logistic_intercept(wins[None, :], x[None, :])[0]
    return {"value": float(fitted), **percentile_interval(logistic_intercept(wins[indices], x[indices]), confidence)}


LOGISTIC_SLOPE_PENALTY = 1e-3
"""Ridge on the length slope only: keeps the fit finite when length separates wins from losses in a resample, and
leaves the intercept (the LC win rate) unpenalised, so with no length differences LC equals the raw win rate."""


def logistic_intercept(outcomes: np.ndarray, x: np.ndarray, iterations: int = 50) -> np.ndarray:
    """sigmoid(a) for each row's fit of outcome ~ sigmoid(a + b·x) (outcomes in [0, 1], ties as 0.5), by Newton's
    method on the Bernoulli log-likelihood with LOGISTIC_SLOPE_PENALTY on b; rows are independent fits."""
    y, x = np.asarray(outcomes, dtype=float), np.asarray(x, dtype=float)
    coef = np.zeros((len(y), 2))
    penalty = np.array([0.0, LOGISTIC_SLOPE_PENALTY]) * y.shape[1]
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(coef[:, :1] + coef[:, 1:] * x)))
        w = p * (1 - p)
        gradient = np.stack([(y - p).sum(1), ((y - p) * x).sum(1)], axis=1) - penalty * coef
        hessian = np.empty((len(y), 2, 2))
        hessian[:, 0, 0] = w.sum(1) + 1e-9
        hessian[:, 0, 1] = hessian[:, 1, 0] = (w * x).sum(1)
        hessian[:, 1, 1] = (w * x * x).sum(1) + penalty[1] + 1e-9
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        coef = np.clip(coef + step, -30, 30)  # an all-win (or all-loss) resample runs the intercept to infinity
        if np.abs(step).max() < 1e-10:
            break
    return 1 / (1 + np.exp(-coef[:, 0]))
