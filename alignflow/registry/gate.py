"""The promotion gate as a pure function: a candidate's eval metrics vs the SFT model and the current alias holder."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from alignflow.config import RegisterParams


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide_promotion(candidate: Mapping[str, float], current: Mapping[str, float] | None, gate: RegisterParams,
                     current_version: str | None = None) -> Decision:
    """Promote only if the candidate beats SFT, stays within the KL bound, and does not fall behind `current`."""
    failures = []
    kl = candidate.get("kl_ppo_sft_mean")
    if kl is None or kl > gate.max_kl:
        failures.append(f"KL to SFT {kl} exceeds {gate.max_kl}")
    if candidate.get("reward_ppo_mean", float("-inf")) <= candidate.get("reward_sft_mean", float("inf")):
        failures.append(f"reward {candidate.get('reward_ppo_mean')} does not beat SFT's {candidate.get('reward_sft_mean')}")
    if candidate.get("win_rate_ppo_vs_sft", 0.0) < gate.min_win_rate:
        failures.append(f"win rate vs SFT {candidate.get('win_rate_ppo_vs_sft')} below {gate.min_win_rate}")
    for metric in gate.gate_metrics if current else ():
        mine, theirs = candidate.get(metric), current.get(metric)
        if theirs is not None and (mine is None or mine < theirs):
            failures.append(f"{metric} {mine} behind @{gate.alias} (version {current_version}: {theirs})")
    if failures:
        return Decision(False, "; ".join(failures))
    against = f" and @{gate.alias} (version {current_version})" if current else f" (no @{gate.alias} yet)"
    return Decision(True, f"beats SFT{against} within KL {kl} <= {gate.max_kl}")
