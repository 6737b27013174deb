"""Paired comparisons behind metrics/eval.json: best-of-n selection, interval metrics per scorer, held-out splits."""

from __future__ import annotations

import pytest

from alignflow.data.records import normalise_comparison
from alignflow.data.tokenize import split_comparison_groups
from alignflow.evaluation.comparison import best_of_n, comparison_metrics


def test_best_of_n_keeps_the_highest_scored_candidate_first_on_ties():
    texts, picks = best_of_n([["a", "b", "c"], ["d", "e", "f"]], [[0.1, 0.9, 0.3], [0.5, 0.5, 0.2]])
    assert texts == ["b", "d"] and picks == [1, 0]


def test_comparison_metrics_carry_intervals_for_each_scorer_and_best_of_n():
    scores = {
        "reward": {"sft": [0.0] * 20, "policy": [1.0] * 15 + [-1.0] * 5, "bon": [0.5] * 10},
        "judge": {"sft": [0.0] * 20, "policy": [0.0] * 20, "bon": [0.0] * 10},
    }
    metrics = comparison_metrics(scores, seed=0)
    assert metrics["win_rate_policy_vs_sft"] == 0.75
    assert metrics["win_rate_policy_vs_sft_ci_low"] < 0.75 < metrics["win_rate_policy_vs_sft_ci_high"]
    assert metrics["reward_diff_policy_sft"] == pytest.approx(0.5)
    assert metrics["judge_win_rate_policy_vs_sft"] == 0.5  # every prompt a tie
    assert metrics["judge_win_rate_policy_vs_sft_ci_low"] == metrics["judge_win_rate_policy_vs_sft_ci_high"] == 0.5
    assert metrics["win_rate_policy_vs_bon"] == 1.0  # best-of-n is compared on its own prefix of prompts
    assert metrics["win_rate_sft_vs_bon"] == 0.0
    assert metrics["judge_agreement"] == 0.0


def test_comparison_groups_split_three_ways_without_overlap():
    splits = split_comparison_groups(100, 0.2, 0.25, seed=3)
    assert [len(splits[k]) for k in ("train", "validation", "judge")] == [55, 20, 25]
    assert sorted(sum(splits.values(), [])) == list(range(100))
    assert split_comparison_groups(100, 0.2, 0.25, seed=3) == splits


def test_a_scored_response_carries_its_quality_category_into_its_pairs():
    record = {
        "id": "c1",
        "prompt": "Why is rice mushy?",
        "responses": [
            {"text": "Too much water.", "score": 9, "category": "good"},
            {"text": "Ugh, fine. Too much water.", "score": 2, "category": "rude"},
            {"text": "Cook it longer.", "score": 4},
        ],
    }
    pairs = normalise_comparison(record)["pairs"]
    assert {(p["rejected"], p["category"]) for p in pairs} == {
        ("Ugh, fine. Too much water.", "rude"),
        ("Cook it longer.", None),
    }


def test_mismatched_answers_pair_each_group_best_response_against_another_prompts_best():
    from alignflow.data.tokenize import with_mismatched_answers

    groups = [
        {
            "id": f"g{i}",
            "prompt": f"question {i}?",
            "pairs": [
                {"chosen": f"good {i}", "rejected": f"bad {i}", "score_gap": 6.0, "category": "rude"},
                {"chosen": f"good {i}", "rejected": f"meh {i}", "score_gap": 2.0, "category": "terse"},
                {"chosen": f"meh {i}", "rejected": f"bad {i}", "score_gap": 4.0, "category": "rude"},
            ],
        }
        for i in range(4)
    ]
    augmented = with_mismatched_answers(groups, 2, seed=0)
    for index, group in enumerate(augmented):
        extra = group["pairs"][3:]
        assert group["pairs"][:3] == groups[index]["pairs"] and len(extra) == 2
        assert all(p["chosen"] == f"good {index}" and p["rejected"].startswith("good ") for p in extra)
        assert all(
            p["rejected"] != f"good {index}" and p["score_gap"] == 6.0 and p["category"] == "off_topic" for p in extra
        )
    assert with_mismatched_answers(groups, 0, seed=0) == groups


def test_reward_datasets_keep_each_group_on_one_side_and_add_mismatched_pairs_only_for_training(tiny_lm):
    from alignflow.config import TokenizeParams
    from alignflow.data.tokenize import reward_datasets

    groups = [
        {
            "id": f"g{i}",
            "prompt": f"question {i}?",
            "pairs": [{"chosen": f"good {i}", "rejected": f"bad {i}", "score_gap": 3.0, "category": "rude"}],
        }
        for i in range(20)
    ]
    config = TokenizeParams(comparison_validation_fraction=0.2, judge_fraction=0.25, mismatched_pairs=1)
    splits, truncated = reward_datasets(groups, tiny_lm[1], config, seed=1)
    members = {split: {row["group"] for row in rows} for split, rows in splits.items()}
    assert [len(members[s]) for s in ("train", "validation", "judge")] == [11, 4, 5] and truncated == 0
    assert not (members["train"] & members["validation"] or members["train"] & members["judge"])
    assert all(row["category"] != "off_topic" for row in splits["validation"])
    assert sum(row["category"] == "off_topic" for row in splits["train"]) == len(members["train"])
