"""End to end with verifiers on the tiny profile: PPO rewarded by IFEval-style constraints beside the reward model,
and DPO on pairs the verifiers ranked, each from policy prompts that carry constraints to a registered version,
with every reward source logged to MLflow."""

from __future__ import annotations

import json

import pytest

from tests.project import copy_project, ran_stages, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verified(tmp_path_factory, tiny_pipeline):
    """A copy of the session's flow-built tiny project (tests/conftest.py), its own to change."""
    return copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("verified") / "project")


IFEVAL_PROMPTS = {"ingest": {"prompts": {"path": "data/samples/prompts_ifeval.jsonl"}}}
"""The policy prompts with IFEval-style constraints attached (`alignflow constrain`)."""


def test_dpo_from_the_base_model_on_pairs_the_verifiers_ranked_reaches_a_registered_version(verified):
    """The ifeval profile's recipe: no SFT step, the base model's sampled answers ranked by the checkers, DPO."""
    import mlflow

    from alignflow.config import apply_overlay

    sampled = {"pairs": "sampled", "sampled_pairs": {"verifiers": [{"name": "ifeval"}], "max_new_tokens": 12}}
    recipe = {"sft": {"tuning": "none"}, "align": {"method": "dpo"}, "dpo": sampled}
    apply_overlay(verified / "params.yaml", IFEVAL_PROMPTS | recipe)
    flow = run(["alignflow", "run"], verified)
    assert {"sft", "baseline", "align", "register"} <= set(ran_stages(flow))
    assert json.loads((verified / "metrics/sft.json").read_text())["trained"] is False
    baseline = json.loads((verified / "metrics/baseline.json").read_text())
    assert baseline["ifeval_prompt_strict_base"] == baseline["ifeval_prompt_strict_sft"]  # one model, answered once
    metrics = json.loads((verified / "metrics/align.json").read_text())
    assert metrics["sampled_pairs"] == metrics["examples"] > 0
    kept = (verified / "models/policy/sampled_pairs.jsonl").read_text().splitlines()
    assert len(kept) == metrics["sampled_pairs"]  # what the policy learned from is kept beside it
    assert 0 <= metrics["sampled_verifier_ifeval"] <= 1
    client = mlflow.MlflowClient(f"sqlite:///{verified / 'mlflow.db'}")
    latest = max(client.search_model_versions("name='alignflow-policy'"), key=lambda v: int(v.version))
    assert latest.tags["lineage.method"] == "dpo" and int(latest.version) == 2  # version 1: the template's run


def test_ppo_with_a_verifier_beside_the_reward_model_logs_each_source_and_registers(verified):
    import mlflow

    from alignflow.config import apply_overlay

    verifiers = {"ppo": {"verifiers": [{"name": "ifeval", "weight": 2.0}]}}
    apply_overlay(verified / "params.yaml", IFEVAL_PROMPTS | {"align": {"method": "ppo"}} | verifiers)
    flow = run(["alignflow", "run"], verified)
    assert "align" in ran_stages(flow) and "register" in ran_stages(flow)
    client = mlflow.MlflowClient(f"sqlite:///{verified / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (align_run,) = client.search_runs(
        experiments, "attributes.run_name = 'align'", order_by=["attributes.start_time DESC"], max_results=1
    )
    history = client.get_metric_history(align_run.info.run_id, "verifier_ifeval")
    assert len(history) == 4 and all(0 <= point.value <= 1 for point in history)  # one per update
    assert client.get_metric_history(align_run.info.run_id, "reward_mean")
    latest = max(client.search_model_versions("name='alignflow-policy'"), key=lambda v: int(v.version))
    assert latest.tags["lineage.method"] == "ppo" and latest.tags["lineage.ppo_kept_update"].endswith("of 4 (best)")
    assert json.loads((verified / "metrics/register.json").read_text())["version"] == int(latest.version)
