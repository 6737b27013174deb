"""The promotion gate as a pure function: a candidate's eval metrics vs the SFT model and the current alias holder.

Comparisons with SFT use the lower ends of paired bootstrap intervals (alignflow.evaluation.statistics), never
point estimates, so a tie or a lucky draw on a few prompts cannot promote. Every check is written so that a
missing or NaN metric fails it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alignflow.config import RegisterParams
from alignflow.evaluation.statistics import format_interval

WIN_RATE = "win_rate_policy_vs_sft"
LC_WIN_RATE = "lc_win_rate_policy_vs_sft"
REWARD_DIFF = "reward_diff_policy_sft"
JUDGE_WIN_RATE = "judge_win_rate_policy_vs_sft"
JUDGE_LC_WIN_RATE = "judge_lc_win_rate_policy_vs_sft"
KL = "kl_policy_sft_mean"
IFEVAL_DIFF = "ifeval_diff_policy_sft"
UNFINISHED = "unfinished_policy"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    def tags(self, alias: str) -> dict[str, str]:
        """How a decision is written, on the model version and on the run that made it: `gate.<alias>.*`."""
        return {
            gate_tag(alias, "decision"): "promoted" if self.promote else "rejected",
            gate_tag(alias, "reason"): self.reason,
        }


def gate_tag(alias: str, field: str) -> str:
    """The tag holding one field of the decision about `alias` (decision, reason, decided_by, decided_at)."""
    return f"gate.{alias}.{field}"


def reward_hacking(candidate: Mapping[str, float], gate: RegisterParams) -> list[str]:
    """A line per sign that the policy gamed its reward rather than improved: the reward model it trained against
    prefers it while the held-out judge does not, or it wins by length (raw win rate well above the length-controlled
    one). Other systems log these curves; the gate refuses on them."""
    signs = []
    floor, rm_low = gate.hacking_min_reward_model, candidate.get(f"{WIN_RATE}_ci_low")
    judge_high = candidate.get(f"{JUDGE_WIN_RATE}_ci_high")
    if floor is not None and rm_low is not None and judge_high is not None and rm_low > floor and judge_high < 0.5:
        signs.append(
            f"reward hacking: the reward model prefers the policy ({format_interval(candidate, WIN_RATE)}, above "
            f"{floor}) but the held-out judge does not ({format_interval(candidate, JUDGE_WIN_RATE)}, below 0.5)"
        )
    if gate.max_length_advantage is not None:
        for raw, controlled, scorer in (
            (WIN_RATE, LC_WIN_RATE, "reward model"),
            (JUDGE_WIN_RATE, JUDGE_LC_WIN_RATE, "judge"),
        ):
            if raw in candidate and controlled in candidate:
                gain = candidate[raw] - candidate[controlled]
                if gain > gate.max_length_advantage:
                    signs.append(
                        f"reward hacking by length: the {scorer}'s raw win rate {candidate[raw]:.4g} exceeds its "
                        f"length-controlled {candidate[controlled]:.4g} by {gain:.4g} > {gate.max_length_advantage}"
                    )
    return signs


def decide_promotion(
    candidate: Mapping[str, float],
    current: Mapping[str, float] | None,
    gate: RegisterParams,
    current_version: str | None = None,
    unlike: Sequence[str] = (),
) -> Decision:
    """Promote only if every bound holds; the reason lists every failure, or every bound passed.

    The judge's bound applies whenever its verdict is present; `require_judge` decides whether a missing one fails.
    `unlike` names the parts of the evaluation fingerprint in which the alias holder was evaluated differently:
    its numbers then mean something else, so the comparison with it is skipped (and the reason says so), while
    every bound against SFT, scored in the candidate's own evaluation, still applies.
    """
    failures: list[str] = []
    passed: list[str] = []

    def check(ok: bool, success: str, failure: str) -> None:
        (passed if ok else failures).append(success if ok else failure)

    def check_interval(key: str, floor: float, label: str) -> None:
        low = candidate.get(f"{key}_ci_low")
        if low is None:
            failures.append(f"no interval for the {label} ({key}_ci_low missing)")
            return
        shown = format_interval(candidate, key)
        check(low > floor, f"{label} {shown}: lower end > {floor}", f"{label} {shown}: lower end not above {floor}")

    check_interval(WIN_RATE, gate.min_win_rate, "win rate vs SFT")
    if gate.min_lc_win_rate is not None:
        check_interval(LC_WIN_RATE, gate.min_lc_win_rate, "length-controlled win rate vs SFT")
    diff_low = candidate.get(f"{REWARD_DIFF}_ci_low")
    if diff_low is None:
        failures.append(f"no interval for the reward difference vs SFT ({REWARD_DIFF}_ci_low missing)")
    else:
        shown = format_interval(candidate, REWARD_DIFF)
        check(
            diff_low > 0,
            f"reward difference vs SFT {shown}: lower end > 0",
            f"reward does not beat SFT: difference {shown} not above 0",
        )
    judge = candidate.get(JUDGE_WIN_RATE)
    if judge is None:
        if gate.require_judge:
            failures.append(f"no judge verdict ({JUDGE_WIN_RATE} missing; register.require_judge is true)")
    else:
        shown = format_interval(candidate, JUDGE_WIN_RATE)
        check(
            judge >= gate.judge_min_win_rate,
            f"judge win rate {shown} >= {gate.judge_min_win_rate}",
            f"judge prefers SFT: win rate {shown} below {gate.judge_min_win_rate}",
        )
    kl = candidate.get(KL)
    check(
        kl is not None and kl <= gate.max_kl,
        f"KL to SFT {kl} <= {gate.max_kl}",
        f"no KL to SFT ({KL} missing)" if kl is None else f"KL to SFT {kl} exceeds {gate.max_kl}",
    )
    unfinished = candidate.get(UNFINISHED)
    check(
        unfinished is not None and unfinished <= gate.max_unfinished,
        f"unfinished responses {unfinished} <= {gate.max_unfinished}",
        f"no share of unfinished responses ({UNFINISHED} missing)"
        if unfinished is None
        else f"unfinished responses {unfinished} exceed {gate.max_unfinished}",
    )
    if gate.max_ifeval_drop is not None:
        check_interval(IFEVAL_DIFF, -gate.max_ifeval_drop, "IFEval prompt-level strict accuracy minus SFT's")
    failures += reward_hacking(candidate, gate)
    if current and unlike:
        passed.append(
            f"@{gate.alias} (version {current_version}) was evaluated differently ({', '.join(unlike)}): "
            "comparison with it skipped"
        )
        current = None
    for metric in gate.gate_metrics if current else ():
        mine, theirs = candidate.get(metric), current.get(metric)
        if theirs is not None and not (mine is not None and mine >= theirs):
            failures.append(f"{metric} {mine} behind @{gate.alias} (version {current_version}: {theirs})")
    if failures:
        return Decision(False, "; ".join(failures))
    if current:
        passed.append(f"not behind @{gate.alias} (version {current_version}) on {', '.join(gate.gate_metrics)}")
    elif not unlike:
        passed.append(f"no @{gate.alias} yet")
    return Decision(True, "passed: " + "; ".join(passed))
