"""The flow run's markdown artifact: which stages ran, the evaluation headline numbers and the promotion decision."""

from __future__ import annotations

from typing import Any

from alignflow.evaluation.statistics import format_interval

HEADLINE = (
    ("reward_policy_mean", "reward (policy)"),
    ("reward_sft_mean", "reward (SFT)"),
    ("reward_diff_policy_sft", "reward difference policy - SFT"),
    ("win_rate_policy_vs_sft", "win rate policy vs SFT"),
    ("lc_win_rate_policy_vs_sft", "length-controlled win rate"),
    ("kl_policy_sft_mean", "KL(policy || SFT)"),
    ("judge_win_rate_policy_vs_sft", "judge win rate"),
    ("judge_lc_win_rate_policy_vs_sft", "judge length-controlled win rate"),
    ("judge_agreement", "judge agreement"),
    ("unfinished_sft", "unfinished responses (SFT)"),
    ("unfinished_policy", "unfinished responses (policy)"),
    ("length_policy_mean", "response length (policy)"),
    ("heldout_perplexity_policy", "held-out perplexity (policy)"),
    ("ifeval_prompt_strict_base", "IFEval prompt-level strict (base)"),
    ("ifeval_prompt_strict_sft", "IFEval prompt-level strict (SFT)"),
    ("ifeval_prompt_strict_policy", "IFEval prompt-level strict (policy)"),
    ("ifeval_diff_policy_sft", "IFEval prompt-level strict, policy - SFT"),
    ("ifeval_diff_policy_base", "IFEval prompt-level strict, policy - base"),
)


def summary_markdown(stages: dict[str, Any], eval_metrics: dict[str, Any], registration: dict[str, Any]) -> str:
    lines = ["# alignflow pipeline run", "", "| stage | status |", "|---|---|"]
    lines += [f"| {name} | {'ran' if result['ran'] else 'up to date'} |" for name, result in stages.items()]
    if eval_metrics:
        lines += ["", "## Evaluation (held-out prompts)", "", "| metric | value |", "|---|---|"]
        lines += [
            f"| {label} | {format_interval(eval_metrics, key)} |" for key, label in HEADLINE if key in eval_metrics
        ]
        if any(f"{key}_ci_low" in eval_metrics for key, _ in HEADLINE):
            lines += ["", "[low, high]: paired bootstrap 95% interval over prompts."]
    if registration:
        verdict = "promoted to" if registration.get("promoted") else "not promoted to"
        lines += [
            "",
            "## Registry",
            "",
            f"Version **{registration.get('version')}** {verdict} `@{registration.get('alias')}`: "
            f"{registration.get('reason')}",
        ]
    return "\n".join(lines) + "\n"
