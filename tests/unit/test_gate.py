"""The promotion gate: interval lower bounds beat SFT, the judge agrees, replies finish, KL bound, current alias."""

import dataclasses

import numpy as np
import pytest

from alignflow.config import RegisterParams
from alignflow.evaluation.statistics import (
    interval_metrics,
    length_controlled_win_rate,
    paired_mean_difference,
    paired_win_rate,
)
from alignflow.registry.gate import decide_promotion

GATE = RegisterParams(max_kl=10.0)
GOOD = {
    "win_rate_policy_vs_sft": 0.7,
    "win_rate_policy_vs_sft_ci_low": 0.62,
    "win_rate_policy_vs_sft_ci_high": 0.78,
    "lc_win_rate_policy_vs_sft": 0.66,
    "lc_win_rate_policy_vs_sft_ci_low": 0.57,
    "lc_win_rate_policy_vs_sft_ci_high": 0.75,
    "reward_policy_mean": 0.8,
    "reward_sft_mean": 0.2,
    "reward_diff_policy_sft": 0.6,
    "reward_diff_policy_sft_ci_low": 0.4,
    "reward_diff_policy_sft_ci_high": 0.8,
    "judge_win_rate_policy_vs_sft": 0.66,
    "judge_win_rate_policy_vs_sft_ci_low": 0.57,
    "judge_win_rate_policy_vs_sft_ci_high": 0.75,
    "kl_policy_sft_mean": 4.0,
    "unfinished_policy": 0.02,
    "unfinished_sft": 0.05,
    "ifeval_diff_policy_sft": 0.02,
    "ifeval_diff_policy_sft_ci_low": -0.06,
    "ifeval_diff_policy_sft_ci_high": 0.1,
}
IFEVAL_TIE = {key: value for key, value in GOOD.items() if key.startswith("ifeval_")}


def eval_metrics(ppo, sft, judge_ppo, judge_sft):
    """What evaluate reports for these per-prompt scores (intervals from the real bootstrap)."""
    return {
        **interval_metrics("win_rate_policy_vs_sft", paired_win_rate(ppo, sft)),
        **interval_metrics(
            "lc_win_rate_policy_vs_sft", length_controlled_win_rate(ppo, sft, [9] * len(ppo), [9] * len(sft))
        ),
        **interval_metrics("reward_diff_policy_sft", paired_mean_difference(ppo, sft)),
        **interval_metrics("judge_win_rate_policy_vs_sft", paired_win_rate(judge_ppo, judge_sft)),
        "reward_policy_mean": float(np.mean(ppo)),
        "kl_policy_sft_mean": 0.0,
        "unfinished_policy": 0.0,
        **IFEVAL_TIE,
    }


def test_clear_winner_is_promoted_and_the_reason_lists_the_bounds_it_passed():
    sft = np.random.default_rng(0).normal(size=200)
    decision = decide_promotion(eval_metrics(sft + 1.0, sft, sft + 0.5, sft), None, GATE)
    assert decision.promote
    for part in (
        "win rate vs SFT 1.0 [1.0, 1.0]: lower end > 0.5",
        "reward difference vs SFT",
        "lower end > 0",
        "judge win rate 1.0 [1.0, 1.0] >= 0.5",
        "KL to SFT 0.0 <= 10.0",
        "unfinished responses 0.0 <= 0.1",
        "no @staging yet",
    ):
        assert part in decision.reason


@pytest.mark.parametrize("min_win_rate", [0.5, 0.3])
def test_identical_models_never_promote(min_win_rate):
    scores = np.random.default_rng(1).normal(size=200)
    metrics = eval_metrics(scores, scores, scores, scores)
    assert metrics["win_rate_policy_vs_sft"] == 0.5 and metrics["reward_diff_policy_sft_ci_low"] == 0.0
    decision = decide_promotion(metrics, None, dataclasses.replace(GATE, min_win_rate=min_win_rate))
    assert not decision.promote and "reward does not beat SFT" in decision.reason


def test_a_tie_with_an_interval_around_one_half_is_rejected():
    tie = {
        **GOOD,
        "win_rate_policy_vs_sft": 0.5,
        "win_rate_policy_vs_sft_ci_low": 0.42,
        "win_rate_policy_vs_sft_ci_high": 0.58,
    }
    decision = decide_promotion(tie, None, GATE)
    assert not decision.promote and "win rate vs SFT 0.5 [0.42, 0.58]: lower end not above 0.5" in decision.reason


@pytest.mark.parametrize("ci_low", [0.5, 0.45])
def test_interval_low_at_or_below_the_bound_rejects_despite_a_high_point_estimate(ci_low):
    lucky = {**GOOD, "win_rate_policy_vs_sft": 0.9, "win_rate_policy_vs_sft_ci_low": ci_low}
    decision = decide_promotion(lucky, None, GATE)
    assert not decision.promote and f"[{ci_low}, 0.78]: lower end not above 0.5" in decision.reason


@pytest.mark.parametrize(
    "key, message",
    [
        ("win_rate_policy_vs_sft_ci_low", "no interval for the win rate vs SFT"),
        ("reward_diff_policy_sft_ci_low", "no interval for the reward difference"),
    ],
)
def test_a_point_estimate_without_its_interval_rejects(key, message):
    decision = decide_promotion({k: v for k, v in GOOD.items() if k != key}, None, GATE)
    assert not decision.promote and message in decision.reason


def test_reward_difference_interval_must_exclude_zero():
    decision = decide_promotion({**GOOD, "reward_diff_policy_sft_ci_low": -0.05}, None, GATE)
    assert not decision.promote
    assert "reward does not beat SFT: difference 0.6 [-0.05, 0.8] not above 0" in decision.reason


def test_judge_preferring_sft_rejects():
    prefers_sft = {
        **GOOD,
        "judge_win_rate_policy_vs_sft": 0.4,
        "judge_win_rate_policy_vs_sft_ci_low": 0.31,
        "judge_win_rate_policy_vs_sft_ci_high": 0.49,
    }
    decision = decide_promotion(prefers_sft, None, GATE)
    assert not decision.promote and "judge prefers SFT: win rate 0.4 [0.31, 0.49] below 0.5" in decision.reason
    optional = dataclasses.replace(GATE, require_judge=False)
    assert not decide_promotion(prefers_sft, None, optional).promote  # a verdict that is there still counts


def test_missing_judge_rejects_only_when_required():
    no_judge = {k: v for k, v in GOOD.items() if not k.startswith("judge_")}
    decision = decide_promotion(no_judge, None, GATE)
    assert not decision.promote and "no judge verdict" in decision.reason
    assert decide_promotion(no_judge, None, dataclasses.replace(GATE, require_judge=False)).promote


def test_too_many_unfinished_responses_reject():
    decision = decide_promotion({**GOOD, "unfinished_policy": 0.25}, None, GATE)
    assert not decision.promote and "unfinished responses 0.25 exceed 0.1" in decision.reason
    missing = decide_promotion({k: v for k, v in GOOD.items() if k != "unfinished_policy"}, None, GATE)
    assert not missing.promote and "unfinished_policy missing" in missing.reason


def test_kl_bound_and_missing_or_nan_kl_reject():
    assert "KL to SFT 12.0 exceeds 10.0" in decide_promotion({**GOOD, "kl_policy_sft_mean": 12.0}, None, GATE).reason
    assert "kl_policy_sft_mean missing" in decide_promotion({**GOOD, "kl_policy_sft_mean": None}, None, GATE).reason
    assert not decide_promotion({**GOOD, "kl_policy_sft_mean": float("nan")}, None, GATE).promote


def test_every_failure_is_named_in_one_reason():
    worse = {
        **GOOD,
        "win_rate_policy_vs_sft_ci_low": 0.3,
        "reward_diff_policy_sft_ci_low": -0.1,
        "judge_win_rate_policy_vs_sft": 0.2,
        "kl_policy_sft_mean": 12.0,
        "unfinished_policy": 0.5,
    }
    decision = decide_promotion(worse, None, GATE)
    assert not decision.promote and len(decision.reason.split("; ")) == 5


def test_candidate_must_not_fall_behind_the_current_alias():
    current = {**GOOD, "win_rate_policy_vs_sft_ci_low": 0.7}
    decision = decide_promotion(GOOD, current, GATE, current_version="3")
    assert not decision.promote
    assert "win_rate_policy_vs_sft_ci_low 0.62 behind @staging (version 3: 0.7)" in decision.reason
    better = decide_promotion({**GOOD, "win_rate_policy_vs_sft_ci_low": 0.72}, current, GATE, "3")
    assert better.promote and "not behind @staging (version 3)" in better.reason


def test_a_candidate_tied_with_the_current_alias_is_promoted_as_the_newer_run():
    """Intended: "not behind" is >=. A retrain that matches @staging on every gate metric passed every absolute
    bound on its own, and it is the newer run (newer data or code); rolling back is an explicit `promote --force`."""
    decision = decide_promotion(GOOD, dict(GOOD), GATE, current_version="3")
    assert decision.promote and "not behind @staging (version 3)" in decision.reason


def test_a_current_holder_without_intervals_does_not_block():
    older = {"reward_policy_mean": 0.5, "win_rate_policy_vs_sft": 0.9}
    assert decide_promotion(GOOD, older, GATE, "1").promote


def test_the_length_controlled_bound_rejects_a_policy_that_wins_only_by_length_and_can_be_turned_off():
    padded = {
        **GOOD,
        "lc_win_rate_policy_vs_sft": 0.52,
        "lc_win_rate_policy_vs_sft_ci_low": 0.44,
        "lc_win_rate_policy_vs_sft_ci_high": 0.6,
    }
    lc_only = dataclasses.replace(GATE, max_length_advantage=None)  # the hacking check would name it too
    decision = decide_promotion(padded, None, lc_only)
    assert not decision.promote
    assert decision.reason == "length-controlled win rate vs SFT 0.52 [0.44, 0.6]: lower end not above 0.5"
    assert decide_promotion(padded, None, dataclasses.replace(lc_only, min_lc_win_rate=None)).promote
    without = {k: v for k, v in GOOD.items() if not k.startswith("lc_")}
    assert "no interval for the length-controlled win rate" in decide_promotion(without, None, GATE).reason


def test_a_drop_in_instruction_following_rejects_and_says_so():
    dropped = {**GOOD, "ifeval_diff_policy_sft": -0.12, "ifeval_diff_policy_sft_ci_low": -0.22}
    decision = decide_promotion(dropped, None, GATE)
    assert not decision.promote
    assert "IFEval prompt-level strict accuracy minus SFT's -0.12 [-0.22, 0.1]: lower end not above -0.15" in (
        decision.reason
    )
    assert decide_promotion(dropped, None, dataclasses.replace(GATE, max_ifeval_drop=None)).promote


def test_without_an_ifeval_comparison_the_bound_fails_rather_than_passing_silently():
    missing = {key: value for key, value in GOOD.items() if not key.startswith("ifeval_")}
    decision = decide_promotion(missing, None, GATE)
    assert not decision.promote and "ifeval_diff_policy_sft_ci_low missing" in decision.reason


def test_a_holder_evaluated_differently_is_not_compared_and_the_reason_names_what_differs():
    better_holder = {**GOOD, "reward_policy_mean": 9.0, "win_rate_policy_vs_sft_ci_low": 0.9}
    behind = decide_promotion(GOOD, better_holder, GATE, "3")
    assert not behind.promote and "behind @staging (version 3" in behind.reason
    unlike = decide_promotion(GOOD, better_holder, GATE, "3", unlike=["eval_prompts", "ifeval"])
    assert unlike.promote
    assert "@staging (version 3) was evaluated differently (eval_prompts, ifeval): comparison with it skipped" in (
        unlike.reason
    )


def test_a_reward_model_gamed_behind_the_judges_back_is_named_as_reward_hacking():
    gamed = {
        **GOOD,
        **interval_keys("win_rate_policy_vs_sft", 0.8, 0.72, 0.88),
        **interval_keys("lc_win_rate_policy_vs_sft", 0.79, 0.7, 0.87),
        **interval_keys("judge_win_rate_policy_vs_sft", 0.4, 0.33, 0.47),
        "judge_lc_win_rate_policy_vs_sft": 0.4,
    }
    decision = decide_promotion(gamed, None, GATE)
    assert not decision.promote
    assert "reward hacking: the reward model prefers the policy (0.8 [0.72, 0.88], above 0.6)" in decision.reason
    undecided_judge = {**gamed, **interval_keys("judge_win_rate_policy_vs_sft", 0.48, 0.41, 0.55)}
    assert "reward hacking" not in decide_promotion(undecided_judge, None, GATE).reason
    unchecked = dataclasses.replace(GATE, hacking_min_reward_model=None)
    assert "reward hacking" not in decide_promotion(gamed, None, unchecked).reason


def test_a_win_by_length_beyond_the_bound_is_named_for_each_scorer():
    longer = {
        **GOOD,
        **interval_keys("win_rate_policy_vs_sft", 0.78, 0.7, 0.85),
        "judge_lc_win_rate_policy_vs_sft": 0.5,
    }
    decision = decide_promotion(longer, None, GATE)
    assert not decision.promote
    assert "by length: the reward model's raw win rate 0.78 exceeds its length-controlled 0.66 by 0.12 > 0.1" in (
        decision.reason
    )
    assert "the judge's raw win rate 0.66 exceeds its length-controlled 0.5 by 0.16 > 0.1" in decision.reason
    assert decide_promotion({**longer, "judge_lc_win_rate_policy_vs_sft": 0.6}, None, GATE).reason.count("length:") == 1
    assert decide_promotion(longer, None, dataclasses.replace(GATE, max_length_advantage=None)).promote


def interval_keys(key, value, low, high):
    return {key: value, f"{key}_ci_low": low, f"{key}_ci_high": high}
