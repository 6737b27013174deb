"""The PPO algorithm as pure tensor functions: KL estimators, GAE, whitening, clipped losses, KL control.

Shapes: (batch, response_len) per-token tensors with a 0/1 `mask` marking real response tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = masked_mean(values, mask)
    count = mask.sum()
    variance = masked_mean((values - mean) ** 2, mask)
    return variance * count / (count - 1) if count > 1 else variance  # unbiased


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise to unit variance over masked entries (and zero mean unless shift_mean is False)."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from samples of the policy (Schulman's k1/k2/k3)."""
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    if kind == "abs":
        return log_ratio.abs()
    raise ValueError(f"unknown KL estimator {kind!r}; expected k1, k2, k3 or abs")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """-kl_coef * KL on every response token, plus the sequence score on its last real token."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def sequence_returns(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Critic-free estimators see one reward per response: its score minus the KL penalty summed over its tokens."""
    return scores - kl_coef * (kl * mask).sum(1)


def group_advantages(returns: torch.Tensor, group_size: int, kind: str) -> torch.Tensor:
    """Per-response advantages from `group_size` consecutive responses to the same prompt.

    rloo: return minus the mean of the group's other returns (leave-one-out baseline, Ahmadian et al. 2024).
    grpo: return minus the group mean, over the group's standard deviation (Shao et al. 2024).
    """
    if group_size < 2 or len(returns) % group_size:
        raise ValueError(f"ppo.samples_per_prompt must be >= 2 and divide the batch for {kind}, got {group_size}")
    grouped = returns.view(-1, group_size)
    if kind == "rloo":
        others = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
        return (grouped - others).flatten()
    if kind == "grpo":
        return ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).flatten()
    raise ValueError(f"unknown advantage estimator {kind!r}; expected gae, rloo or grpo")


def unfinished_penalty(scores: torch.Tensor, finished: torch.Tensor, penalty: float) -> torch.Tensor:
    """Subtract `penalty` from responses that ran out of tokens before the stop token (TRL's missing_eos_penalty)."""
    return scores - penalty * (~finished).float()


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each response; returns (advantages, returns).

    Positions after the last real token contribute nothing (their value and reward are masked out).
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages * mask, (advantages + values) * mask


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate objective (to minimise), with clip fraction and approximate KL to the old policy."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    stats = {
        "clipfrac": masked_mean((clipped > unclipped).float(), mask),
        "approx_kl": masked_mean(0.5 * log_ratio**2, mask),
    }
    return loss, stats


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value loss: the larger of the plain and the clipped squared error, halved."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    plain, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(plain, clipped), mask)
    return loss, {"value_clipfrac": masked_mean((clipped > plain).float(), mask)}


def entropy_from_logits(logits: torch.Tensor, chunk: int) -> torch.Tensor:
    """Per-position entropy of (positions, vocab) logits in float32, `chunk` positions at a time: a float32
    log-softmax of a whole PPO batch would take over a gigabyte beside the live graph."""

    def entropy(part: torch.Tensor) -> torch.Tensor:
        logprobs = torch.log_softmax(part.float(), dim=-1)
        return -(logprobs.exp() * logprobs).sum(-1)

    return torch.cat([entropy(part) for part in logits.split(chunk)])


@dataclass
class AdaptiveKLController:
    """Ziegler et al. (2019): move the KL coefficient so the observed KL tracks `target` over `horizon` samples."""

    value: float
    target: float | None = None
    horizon: int = 10000

    def update(self, observed_kl: float, batch_size: int) -> float:
        if self.target is not None:
            error = max(-0.2, min(0.2, observed_kl / self.target - 1))
            self.value *= 1 + error * batch_size / self.horizon
        return self.value


def normalise_scores(scores: torch.Tensor, mean: float, std: float, clip: float | None) -> torch.Tensor:
    """Reward-model scores standardised with the RM's own training statistics, then clipped."""
    scores = (scores - mean) / (std if std > 0 and math.isfinite(std) else 1.0)
    return scores.clamp(-clip, clip) if clip else scores
