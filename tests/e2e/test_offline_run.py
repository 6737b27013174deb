"""A whole pipeline run asks the network for nothing: every Python process of `alignflow run` (the flow, Prefect's
server, DVC, each stage) loads a guard that refuses and records any connection to a host other than this machine.
The run has the hub allowed (no HF_HUB_OFFLINE) and Prefect's analytics at the project's own default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.project import copy_project, project_env, run

pytestmark = pytest.mark.slow
GUARD = Path(__file__).resolve().parent.parent / "network_guard"
ONLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")


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


def test_a_full_tiny_run_with_the_hub_allowed_makes_no_outbound_connection(tmp_path_factory, tiny_pipeline):
    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("offline") / "project")
    log = project.parent / "network.log"
    flow = run(["alignflow", "run", "--set", "common.seed=1"], project, guarded_env(project, log))  # every stage
    ran = [entry.split(":")[0] for entry in flow.stdout.splitlines() if entry.endswith(": ran")]
    assert ran == [
        "machine",
        "ingest",
        "tokenize",
        "sft",
        "reward",
        "baseline",
        "align",
        "evaluate",
        "register",
    ]  # dedup: no seed
    assert not log.exists(), log.read_text()
