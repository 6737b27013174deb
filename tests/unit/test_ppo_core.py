"""PPO core against hand-computed values: GAE, clipped losses, KL estimators, token rewards, KL control."""

import math

import pytest
import torch

from alignflow.rl import core
from alignflow.rl.core import (
    AdaptiveKLController,
    gae,
    kl_estimate,
    normalise_scores,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)

t = torch.tensor


@pytest.mark.parametrize(
    "gamma, lam, advantages",
    [
        (1.0, 1.0, [0.5, 0.6, 0.7]),
        (0.5, 0.5, [-0.31875, -0.075, 0.7]),
    ],
)
def test_gae_matches_hand_computation(gamma, lam, advantages):
    rewards, values, mask = t([[0.0, 0.0, 1.0]]), t([[0.5, 0.4, 0.3]]), torch.ones(1, 3)
    adv, returns = gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(adv, t([advantages]))
    assert torch.allclose(returns, adv + values)


def test_gae_ignores_positions_after_the_response():
    adv, returns = gae(t([[0.0, 1.0, 5.0]]), t([[0.5, 0.4, 9.0]]), t([[1.0, 1.0, 0.0]]), 1.0, 1.0)
    assert torch.allclose(adv, t([[0.5, 0.6, 0.0]])) and torch.allclose(returns, t([[1.0, 1.0, 0.0]]))


def test_policy_loss_clips_both_directions():
    old = torch.zeros(1, 2)
    loss, stats = policy_loss(torch.log(t([[1.5, 0.5]])), old, t([[1.0, -1.0]]), torch.ones(1, 2), 0.2)
    assert loss.item() == pytest.approx(-0.2) and stats["clipfrac"].item() == 1.0
    loss, stats = policy_loss(torch.log(t([[1.1, 1.0]])), old, t([[2.0, 3.0]]), torch.ones(1, 2), 0.2)
    assert loss.item() == pytest.approx(-2.6) and stats["clipfrac"].item() == 0.0


def test_value_loss_takes_the_pessimistic_clipped_error():
    loss, stats = value_loss(t([[1.0]]), t([[0.0]]), t([[2.0]]), t([[1.0]]), 0.5)
    assert loss.item() == pytest.approx(1.125) and stats["value_clipfrac"].item() == 1.0


def test_kl_estimators_on_known_values():
    logp, ref = torch.log(t([0.5])), torch.log(t([0.25]))
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))


def test_k1_and_k3_are_unbiased_on_samples():
    torch.manual_seed(0)
    p, q = torch.softmax(t([1.0, 0.0, -1.0]), 0), torch.softmax(t([0.0, 0.5, 0.0]), 0)
    true_kl = (p * (p / q).log()).sum().item()
    samples = torch.multinomial(p, 200_000, replacement=True)
    for kind in ("k1", "k3"):
        assert kl_estimate(p.log()[samples], q.log()[samples], kind).mean().item() == pytest.approx(true_kl, rel=0.03)


def test_token_rewards_put_the_score_on_the_last_real_token():
    rewards = token_rewards(t([2.0]), t([[0.1, 0.2, 0.3]]), t([[1.0, 1.0, 0.0]]), kl_coef=0.5)
    assert torch.allclose(rewards, t([[-0.05, 1.9, 0.0]]))


def test_whiten_and_score_normalisation():
    values, mask = t([[1.0, 2.0, 3.0, 100.0]]), t([[1.0, 1.0, 1.0, 0.0]])
    white = whiten(values, mask)
    assert white[0, :3].mean().abs() < 1e-6 and white[0, 3] == 0
    assert torch.allclose(normalise_scores(t([3.0, -9.0]), mean=1.0, std=2.0, clip=3.0), t([1.0, -3.0]))


def test_adaptive_kl_controller_moves_toward_target():
    controller = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    assert controller.update(12.0, 100) == pytest.approx(0.2004)
    assert controller.update(0.0, 100) < 0.2004
    assert AdaptiveKLController(0.2).update(50.0, 100) == 0.2  # fixed coefficient


def test_rloo_baseline_is_the_mean_of_the_other_samples_of_the_same_prompt():
    returns = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])  # two prompts, three samples each
    advantages = core.group_advantages(returns, 3, "rloo")
    # prompt 1: 1-(2+6)/2=-3, 2-(1+6)/2=-1.5, 6-(1+2)/2=4.5; prompt 2: 0-1.5, 0-1.5, 3-0
    assert advantages.tolist() == pytest.approx([-3.0, -1.5, 4.5, -1.5, -1.5, 3.0])


def test_grpo_normalises_within_each_group():
    returns = torch.tensor([1.0, 3.0, 10.0, 10.0, 10.0, 10.0])  # a group of two, twice; the second has no spread
    advantages = core.group_advantages(returns, 2, "grpo")
    std = math.sqrt(2.0)  # unbiased std of (1, 3)
    assert advantages.tolist() == pytest.approx([-1 / (std + 1e-4), 1 / (std + 1e-4), 0.0, 0.0, 0.0, 0.0])


def test_group_advantages_reject_groups_that_do_not_fit():
    with pytest.raises(ValueError, match="samples_per_prompt"):
        core.group_advantages(torch.zeros(5), 2, "rloo")
    with pytest.raises(ValueError, match="samples_per_prompt"):
        core.group_advantages(torch.zeros(4), 1, "grpo")


def test_sequence_return_subtracts_the_summed_kl_penalty_of_real_tokens():
    scores = torch.tensor([2.0, 1.0])
    kl = torch.tensor([[0.5, 0.5, 9.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert core.sequence_returns(scores, kl, mask, 0.1).tolist() == pytest.approx([2.0 - 0.1, 1.0 - 0.1])


def test_unfinished_penalty_hits_only_responses_without_the_stop_token():
    scores = torch.tensor([1.0, 1.0, -2.0])
    penalised = core.unfinished_penalty(scores, torch.tensor([True, False, False]), 1.5)
    assert penalised.tolist() == pytest.approx([1.0, -0.5, -3.5])
