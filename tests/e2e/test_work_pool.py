"""`alignflow deploy --pool` puts the scheduled flow on a Prefect process work pool, and a `prefect worker` polling
that pool runs it to completion (here: the ingest stage only, to keep the test short)."""

from __future__ import annotations

import json
import time

import pytest

from tests.project import make_project, project_env, run
from tests.services import start_prefect, stop

pytestmark = pytest.mark.slow


def test_a_process_worker_on_the_pool_runs_the_deployment(tmp_path):
    project = make_project(tmp_path / "project")
    server, url = start_prefect(tmp_path)
    env = {**project_env(project), "PREFECT_API_URL": f"{url}/api", "COLUMNS": "250"}  # untruncated tables
    try:
        deployed = run(["alignflow", "deploy", "--pool", "next-to-ray", "--name", "nightly"], project, env)
        assert "work pool 'next-to-ray'" in deployed.stdout
        pools = run(["prefect", "work-pool", "inspect", "next-to-ray"], project, env).stdout
        assert "process" in pools
        deployment = run(["prefect", "deployment", "inspect", "alignflow-pipeline/nightly"], project, env).stdout
        assert "0 3 * * *" in deployment  # the cron of params `schedule`
        run(
            [
                "prefect", "deployment", "run", "alignflow-pipeline/nightly",
                "--params", json.dumps({"stages": ["ingest"]}),
            ],
            project,
            env,
        )  # fmt: skip
        run(["prefect", "worker", "start", "--pool", "next-to-ray", "--run-once"], project, env)
        completed = ["prefect", "flow-run", "ls", "--state", "COMPLETED"]
        deadline = time.monotonic() + 300
        while "alignflow-pipeline" not in run(completed, project, env).stdout and time.monotonic() < deadline:
            time.sleep(2)
        assert "alignflow-pipeline" in run(completed, project, env).stdout, run(
            ["prefect", "flow-run", "ls"], project, env
        ).stdout
        assert (project / "metrics/ingest.json").is_file()  # the worker ran the stage in this checkout
    finally:
        stop(server)
