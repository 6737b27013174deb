"""The flow run's summary artifact: stage statuses, headline numbers with their intervals, the gate's verdict."""

from flows.report import summary_markdown


def test_summary_lists_stages_intervals_and_the_registry_verdict():
    markdown = summary_markdown(
        {"sft": {"ran": True}, "reward": {"ran": False}},
        {"win_rate_policy_vs_sft": 0.68, "win_rate_policy_vs_sft_ci_low": 0.61, "win_rate_policy_vs_sft_ci_high": 0.75},
        {"version": 3, "promoted": False, "alias": "staging", "reason": "win rate interval low 0.48 <= 0.5"},
    )
    assert "| sft | ran |" in markdown and "| reward | up to date |" in markdown
    assert "| win rate policy vs SFT | 0.68 [0.61, 0.75] |" in markdown and "bootstrap 95% interval" in markdown
    assert "Version **3** not promoted to `@staging`: win rate interval low 0.48 <= 0.5" in markdown


def test_summary_of_a_run_that_stopped_before_evaluate_has_only_the_stages():
    markdown = summary_markdown({"ingest": {"ran": True}}, {}, {})
    assert "| ingest | ran |" in markdown and "Evaluation" not in markdown and "Registry" not in markdown
