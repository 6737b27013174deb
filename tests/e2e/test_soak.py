"""A short soak of scheduled runs (tests/soak.py; `bench/soak.py` runs the long one): two runs of the deployment
on a process work pool, the worker and everything it started killed during the first run's align stage.

The killed run ends Crashed (its heartbeats stopped), the next run still gets the deployment's slot, takes over the
run lock, marks the dead run's MLflow runs KILLED and registers; each run that reached register made exactly one
version; nothing stays RUNNING, no process or port is left, and the DVC cache stays at one run's outputs."""

from __future__ import annotations

import pytest

from tests.soak import soak

pytestmark = pytest.mark.slow


def test_two_scheduled_runs_with_the_worker_killed_mid_run_leave_a_consistent_registry(tmp_path, tiny_pipeline):
    report = soak(tiny_pipeline.path, tmp_path, runs=2, kill_run=1, interval=20, heartbeat=30)
    assert [r["state"] for r in report.runs].count("CRASHED") == 1, report.runs
    assert next(r for r in report.runs if r["state"] == "CRASHED")["id"] == report.killed_run
    assert any(v["flow_run_id"] in {r["id"] for r in report.runs} for v in report.versions), "no run registered"
    assert report.problems() == {}
