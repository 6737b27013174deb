"""The promotion gate: beat SFT, stay within the KL bound, do not fall behind the current alias holder."""
from alignflow.config import RegisterParams
from alignflow.registry.gate import decide_promotion

GATE = RegisterParams(max_kl=10.0, min_win_rate=0.5)
GOOD = {"reward_ppo_mean": 0.8, "reward_sft_mean": 0.2, "win_rate_ppo_vs_sft": 0.7, "kl_ppo_sft_mean": 4.0}


def test_first_good_candidate_is_promoted():
    decision = decide_promotion(GOOD, None, GATE)
    assert decision.promote and "no @staging yet" in decision.reason


def test_each_failure_is_named():
    worse = {**GOOD, "reward_ppo_mean": 0.1, "win_rate_ppo_vs_sft": 0.3, "kl_ppo_sft_mean": 12.0}
    decision = decide_promotion(worse, None, GATE)
    assert not decision.promote
    for part in ("KL to SFT 12.0 exceeds 10.0", "does not beat SFT", "win rate vs SFT 0.3 below 0.5"):
        assert part in decision.reason


def test_candidate_must_not_fall_behind_the_current_alias():
    current = {**GOOD, "reward_ppo_mean": 0.9}
    decision = decide_promotion(GOOD, current, GATE, current_version="3")
    assert not decision.promote and "reward_ppo_mean 0.8 behind @staging (version 3: 0.9)" in decision.reason
    assert decide_promotion({**GOOD, "reward_ppo_mean": 0.95}, current, GATE, "3").promote
