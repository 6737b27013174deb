"""End to end with verifiers on the tiny profile: PPO rewarded by a verifier beside the reward model, to a registered
version, with every reward source logged to MLflow. Only the policy's params change, so only the policy slot and
what reads it rerun. The IFEval checkers with prompts that carry constraints rank DPO's pairs in
tests/e2e/test_offline_run.py, on public data under the network guard."""

from __future__ import annotations

import json

import pytest

from tests.project import copy_project, ran_stages, run

pytestmark = pytest.mark.slow


def test_ppo_with_a_verifier_beside_the_reward_model_logs_each_source_and_registers(tmp_path, tiny_pipeline):
    import mlflow

    from alignflow.config import apply_overlay

    verified = copy_project(tiny_pipeline.path, tmp_path / "project")  # the session's tiny run (tests/conftest.py)
    words = {"name": "length", "weight": 2.0, "options": {"min_words": 3}}
    apply_overlay(verified / "params.yaml", {"ppo": {"verifiers": [words]}})
    flow = run(["alignflow", "run"], verified)
    assert ran_stages(flow) == ["machine", "align", "evaluate", "register"]
    client = mlflow.MlflowClient(f"sqlite:///{verified / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (align_run,) = client.search_runs(
        experiments, "attributes.run_name = 'align'", order_by=["attributes.start_time DESC"], max_results=1
    )
    history = client.get_metric_history(align_run.info.run_id, "verifier_length")
    assert len(history) == 4 and all(0 <= point.value <= 1 for point in history)  # one per update
    assert client.get_metric_history(align_run.info.run_id, "reward_mean")
    latest = max(client.search_model_versions("name='alignflow-policy'"), key=lambda v: int(v.version))
    assert latest.tags["lineage.method"] == "ppo" and latest.tags["lineage.ppo_kept_update"].endswith("of 4 (best)")
    assert json.loads((verified / "metrics/register.json").read_text())["version"] == int(latest.version)
