"""Paired bootstrap intervals: hand-checkable win rates and mean differences, pairing, determinism, errors."""

import numpy as np
import pytest

from alignflow.evaluation.metrics import win_rate
from alignflow.evaluation.statistics import (
    LOGISTIC_SLOPE_PENALTY,
    format_interval,
    interval_metrics,
    length_controlled_win_rate,
    paired_mean_difference,
    paired_win_rate,
)


def test_all_wins_give_the_degenerate_interval_one_one():
    assert paired_win_rate([2.0, 3.0, 5.0], [1.0, 1.0, 1.0]) == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}


def test_all_ties_give_exactly_one_half():
    scores = [0.3, -1.2, 4.0, 0.0]
    assert paired_win_rate(scores, scores) == {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5}


def test_mixed_case_contains_the_point_and_narrows_with_more_prompts():
    candidate, baseline = [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]  # 3 wins of 4
    small = paired_win_rate(candidate, baseline)
    large = paired_win_rate(candidate * 100, baseline * 100)
    for result in (small, large):
        assert result["value"] == 0.75 and result["ci_low"] <= 0.75 <= result["ci_high"]
    assert large["ci_high"] - large["ci_low"] < (small["ci_high"] - small["ci_low"]) / 4
    half_width = 1.96 * np.sqrt(0.75 * 0.25 / 400)  # normal approximation for 400 prompts
    assert large["ci_low"] == pytest.approx(0.75 - half_width, abs=0.015)
    assert large["ci_high"] == pytest.approx(0.75 + half_width, abs=0.015)


def test_mean_difference_of_a_constant_shift_is_that_shift_with_no_width():
    baseline = np.arange(10) * 0.25
    assert paired_mean_difference(baseline + 0.5, baseline) == {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5}


def test_pairs_stay_together_when_resampling():
    baseline = np.arange(50) * 100.0  # huge spread across prompts, identical gap within each pair
    result = paired_mean_difference(baseline + 1.0, baseline)
    assert result["ci_low"] == pytest.approx(1.0) and result["ci_high"] == pytest.approx(1.0)


def test_same_seed_same_interval_other_seed_other_interval():
    rng = np.random.default_rng(1)
    candidate, baseline = rng.normal(0.2, 1.0, 60), rng.normal(0.0, 1.0, 60)
    assert paired_win_rate(candidate, baseline, seed=3) == paired_win_rate(candidate, baseline, seed=3)
    assert paired_mean_difference(candidate, baseline, seed=3) == paired_mean_difference(candidate, baseline, seed=3)
    assert paired_mean_difference(candidate, baseline, seed=3) != paired_mean_difference(candidate, baseline, seed=4)


def test_higher_confidence_gives_a_wider_interval():
    rng = np.random.default_rng(2)
    candidate, baseline = rng.normal(0.2, 1.0, 80), rng.normal(0.0, 1.0, 80)
    narrow = paired_mean_difference(candidate, baseline, confidence=0.5)
    wide = paired_mean_difference(candidate, baseline, confidence=0.99)
    assert wide["ci_low"] < narrow["ci_low"] <= narrow["ci_high"] < wide["ci_high"]


def test_metrics_win_rate_uses_the_same_tie_rule():
    candidate, baseline = [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 5.0, 4.0]  # tie, win, loss, tie
    assert win_rate(candidate, baseline) == paired_win_rate(candidate, baseline)["value"] == 0.5


def test_interval_metrics_flatten_and_round():
    result = {"value": 0.712345, "ci_low": 0.641111, "ci_high": 0.78999}
    assert interval_metrics("win_rate_policy_vs_sft", result) == {
        "win_rate_policy_vs_sft": 0.7123,
        "win_rate_policy_vs_sft_ci_low": 0.6411,
        "win_rate_policy_vs_sft_ci_high": 0.79,
    }


def test_format_interval_shows_the_bounds_when_present():
    metrics = {"win_rate": 0.71, "win_rate_ci_low": 0.64, "win_rate_ci_high": 0.78, "kl": 3.0}
    assert format_interval(metrics, "win_rate") == "0.71 [0.64, 0.78]"
    assert format_interval(metrics, "kl") == "3.0"


@pytest.mark.parametrize("statistic", [paired_win_rate, paired_mean_difference])
def test_bad_inputs_are_refused_with_a_reason(statistic):
    with pytest.raises(ValueError, match="no scores to compare"):
        statistic([], [])
    with pytest.raises(ValueError, match="candidate has 3 scores but baseline has 2"):
        statistic([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        statistic([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence"):
        statistic([1.0], [0.0], confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        statistic([1.0], [0.0], resamples=0)


def test_length_controlled_win_rate_is_the_logistic_fit_at_zero_length_difference():
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    lengths_a, lengths_b = rng.integers(20, 90, 60), rng.integers(20, 90, 60)
    a = rng.normal(size=60) + 0.02 * (lengths_a - lengths_b)
    b = rng.normal(size=60)
    b[:5] = a[:5]  # ties count half
    y = (a > b) + 0.5 * (a == b)
    x = (lengths_a - lengths_b) / np.std(lengths_a - lengths_b)

    def loss(coef):  # Bernoulli log-likelihood with fractional outcomes, the slope's ridge as documented
        z = coef[0] + coef[1] * x
        return -np.sum(y * z - np.logaddexp(0, z)) + LOGISTIC_SLOPE_PENALTY * len(y) * coef[1] ** 2 / 2

    intercept = minimize(loss, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x[0]
    result = length_controlled_win_rate(a, b, lengths_a, lengths_b)
    assert result["value"] == pytest.approx(1 / (1 + np.exp(-intercept)), abs=1e-6)
    assert result["ci_low"] < result["value"] < result["ci_high"]


def test_without_length_differences_the_length_controlled_win_rate_is_the_raw_one():
    rng = np.random.default_rng(4)
    a, b, lengths = rng.normal(size=80), rng.normal(size=80), rng.integers(10, 50, 80)
    assert length_controlled_win_rate(a, b, lengths, lengths) == pytest.approx(paired_win_rate(a, b), abs=1e-9)


def test_a_policy_that_wins_by_being_longer_scores_lower_length_controlled():
    rng = np.random.default_rng(5)
    extra = rng.normal(12, 10, 165)  # the policy writes ~12 tokens more, and the scorer likes length
    candidate, baseline = 0.1 * extra + rng.normal(0, 1, 165), rng.normal(0, 1, 165)
    lengths_sft = rng.integers(30, 60, 165)
    raw = paired_win_rate(candidate, baseline)
    controlled = length_controlled_win_rate(candidate, baseline, lengths_sft + extra, lengths_sft)
    assert raw["value"] > 0.6 and controlled["value"] < raw["value"] - 0.1
