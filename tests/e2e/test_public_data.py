"""Real public data through the tiny pipeline: the shipped hh-rlhf file, read by the `hh-rlhf` preset, replaces the
comparisons; the reward model, the policy and the gate rerun on it and a version is registered, while SFT, whose
data did not change, is skipped."""

from __future__ import annotations

import json

import pytest

from alignflow.config import apply_overlay
from tests.project import copy_project, run

pytestmark = pytest.mark.slow
HH_RLHF = "data/hh-rlhf/harmless-base-test.jsonl.gz"


def test_preset_mapped_hh_rlhf_comparisons_run_to_a_registered_version(tmp_path_factory, tiny_pipeline):
    import mlflow
    from datasets import load_from_disk

    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("public_data") / "project")
    source = {"path": HH_RLHF, "preset": "hh-rlhf", "limit": 80}
    apply_overlay(project / "params.yaml", {"ingest": {"comparisons": source}})

    flow = run(["alignflow", "run"], project)
    ran = [entry.split(":")[0] for entry in flow.stdout.splitlines() if entry.endswith(": ran")]
    assert ran == ["machine", "ingest", "dedup", "tokenize", "reward", "baseline", "align", "evaluate", "register"]

    groups = [json.loads(line) for line in (project / "data/raw/comparisons.jsonl").read_text().splitlines()]
    assert len(groups) == 80 and groups[0]["id"] == "harmless-base-test-1"
    assert sum(bool(group.get("context")) for group in groups) > 20  # multi-turn conversations keep their turns
    reward_rows = load_from_disk(str(project / "data/tokenized/reward"))["train"]
    assert "context" in reward_rows.column_names

    assert json.loads((project / "metrics/register.json").read_text())["version"] == 2
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    version = client.get_model_version("alignflow-policy", "2")
    assert version.tags["gate.staging.decision"] in ("promoted", "rejected")
    assert (
        version.tags["lineage.dvc.models/policy"]
        != client.get_model_version("alignflow-policy", "1").tags["lineage.dvc.models/policy"]
    )
