"""MLflow runs a killed process left RUNNING are marked KILLED by the next pipeline run; runs of a live process
and runs opened on another host are left alone. A real SQLite-backed MLflow store; the killed process is real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow

from alignflow import tracking

ROOT = Path(__file__).resolve().parents[2]
DIES_IN_A_STAGE = """
import os, signal
from alignflow import tracking
with tracking.stage_run("align", "soak", {}) as run:
    print(run.info.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_runs_left_running_by_a_killed_stage_are_marked_killed_and_no_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(tracking.PARENT_RUN_ENV, None)
    died = subprocess.run(
        [sys.executable, "-c", DIES_IN_A_STAGE], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    orphan = died.stdout.split()[0]
    client = tracking.client()
    assert client.get_run(orphan).info.status == "RUNNING"
    experiment = client.get_experiment_by_name("soak").experiment_id
    elsewhere = client.create_run(experiment, tags={
        tracking.OWNER_TAG: json.dumps({"pid": 1, "host": "build-box-7", "started": "2026-01-01T00:00:00+00:00"})
    }).info.run_id  # fmt: skip
    with tracking.pipeline_run("soak") as live:  # this process: alive
        assert tracking.reap_orphaned_runs("soak") == [orphan]
        assert mlflow.MlflowClient().get_run(live).info.status == "RUNNING"
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(elsewhere).info.status == "RUNNING"
    assert tracking.reap_orphaned_runs("soak") == []
