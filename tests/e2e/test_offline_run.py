"""Real public data through a whole pipeline run that asks the network for nothing, on the ifeval profile's recipe.

The shipped hh-rlhf file, read by the `hh-rlhf` preset, replaces the tiny profile's comparisons, the policy
prompts carry IFEval-style constraints, `common.seed` changes, and DPO learns from the base model's sampled answers
ranked by the IFEval checkers, so every stage reruns. Every Python process of that `alignflow run` (the flow,
Prefect's server, DVC, each stage) loads a guard that refuses and records any connection to a host other than
this machine. The run has the hub allowed (no HF_HUB_OFFLINE) and Prefect's analytics at the project's own default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alignflow.config import apply_overlay
from tests.project import copy_project, project_env, ran_stages, run

pytestmark = pytest.mark.slow
GUARD = Path(__file__).resolve().parent.parent / "network_guard"
ONLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")
HH_RLHF = "data/hh-rlhf/harmless-base-test.jsonl.gz"
IFEVAL_PROMPTS = {"ingest": {"prompts": {"path": "data/samples/prompts_ifeval.jsonl"}}}
"""The policy prompts with IFEval-style constraints attached (`alignflow constrain`)."""
IFEVAL_RECIPE = IFEVAL_PROMPTS | {
    "sft": {"tuning": "none"},
    "align": {"method": "dpo"},
    "dpo": {"pairs": "sampled", "sampled_pairs": {"verifiers": [{"name": "ifeval"}], "max_new_tokens": 12}},
}
"""configs/ifeval.yaml's recipe at the tiny profile's size: no SFT step, the base model's sampled answers ranked
by the IFEval checkers, DPO on the pairs they tell apart."""


def guarded_env(project: Path, log: Path) -> dict[str, str]:
    env = {k: v for k, v in project_env(project).items() if k not in ONLINE_SWITCHES}
    pythonpath = [str(GUARD), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(pythonpath), "ALIGNFLOW_NETWORK_LOG": str(log)}


def test_the_guard_refuses_and_records_an_outbound_connection(tmp_path):
    import sys

    log = tmp_path / "network.log"
    probe = "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
    probe += "except OSError as e:\n    print(e)"
    result = run([sys.executable, "-c", probe], tmp_path, guarded_env(tmp_path, log))
    assert "refused by the test's network guard" in result.stdout
    assert "-> 192.0.2.1:443" in log.read_text()


@pytest.fixture(scope="module")
def public_data_run(tmp_path_factory, tiny_pipeline):
    """The tiny project on 80 hh-rlhf comparisons, with another seed and the ifeval recipe, run under the guard:
    (project, flow, log)."""
    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("public_data") / "project")
    source = {"path": HH_RLHF, "preset": "hh-rlhf", "limit": 80}
    overlay = IFEVAL_RECIPE | {"ingest": IFEVAL_PROMPTS["ingest"] | {"comparisons": source}, "common": {"seed": 1}}
    apply_overlay(project / "params.yaml", overlay)
    log = project.parent / "network.log"
    return project, run(["alignflow", "run"], project, guarded_env(project, log)), log


def test_a_full_tiny_run_with_the_hub_allowed_makes_no_outbound_connection(public_data_run):
    _, flow, log = public_data_run
    assert ran_stages(flow) == [
        "machine",
        "ingest",
        "dedup",
        "tokenize",
        "sft",
        "reward",
        "baseline",
        "align",
        "evaluate",
        "register",
    ]
    assert not log.exists(), log.read_text()


def test_preset_mapped_hh_rlhf_comparisons_run_to_a_registered_version(public_data_run):
    import mlflow
    from datasets import load_from_disk

    project, _, _ = public_data_run
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


def test_dpo_from_the_base_model_on_pairs_the_verifiers_ranked_reaches_a_registered_version(public_data_run):
    import mlflow

    project, _, _ = public_data_run
    assert json.loads((project / "metrics/sft.json").read_text())["trained"] is False
    baseline = json.loads((project / "metrics/baseline.json").read_text())
    assert baseline["ifeval_prompt_strict_base"] == baseline["ifeval_prompt_strict_sft"]  # one model, answered once
    metrics = json.loads((project / "metrics/align.json").read_text())
    assert metrics["sampled_pairs"] == metrics["examples"] > 0
    kept = (project / "models/policy/sampled_pairs.jsonl").read_text().splitlines()
    assert len(kept) == metrics["sampled_pairs"]  # what the policy learned from is kept beside it
    assert 0 <= metrics["sampled_verifier_ifeval"] <= 1
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_model_version("alignflow-policy", "2").tags["lineage.method"] == "dpo"
