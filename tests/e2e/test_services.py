"""Servers started by the test on 127.0.0.1: a Prefect server that schedules `alignflow serve`'s deployment (and
marks Crashed the run a killed serve leaves behind), and the MLflow UI showing a registered model and its
`staging` alias in headless Chromium."""

from __future__ import annotations

import os
import sys
import time

import pytest
import requests

from tests.project import make_project, project_env
from tests.services import CHROMIUM, free_port, kill_tree, launch_chromium, start, stop, wait_for
from tests.soak import Api

pytestmark = pytest.mark.slow


def test_serve_schedules_one_run_at_a_time_and_a_run_left_by_a_killed_serve_ends_crashed(tmp_path):
    make_project(tmp_path)  # serve loads flows/pipeline.py from the checkout it runs in
    port = free_port()
    env = {
        **project_env(tmp_path),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
    }
    server = start(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path
    )
    serve = None
    api = Api(f"http://127.0.0.1:{port}")
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", 120, server)
        serve = start(["alignflow", "serve", "--cron", "15 4 * * *", "--heartbeat", "30"], env, tmp_path)
        deadline, found = time.time() + 120, []
        while time.time() < deadline and not found:
            response = requests.post(f"http://127.0.0.1:{port}/api/deployments/filter", json={}, timeout=5)
            found = [d for d in response.json() if d["name"] == "alignflow-scheduled"]
            time.sleep(2)
        assert found, "no deployment registered"
        deployment = found[0]
        assert [s["schedule"].get("cron") for s in deployment["schedules"]] == ["15 4 * * *"]
        assert [s["schedule"].get("timezone") for s in deployment["schedules"]] == ["UTC"]  # params schedule.timezone
        assert deployment["global_concurrency_limit"]["limit"] == 1
        deadline, runs = time.time() + 60, []
        while time.time() < deadline and not runs:  # the server's scheduler creates the upcoming runs
            runs = api.flow_runs(deployment["id"])
            time.sleep(2)
        assert runs and all(r["state_type"] == "SCHEDULED" for r in runs)

        response = requests.post(f"{api.url}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=30)
        flow_run = response.json()["id"]
        deadline = time.time() + 180
        while api.state(flow_run) != "RUNNING":
            assert time.time() < deadline, f"serve did not start the run: {api.state(flow_run)}"
            time.sleep(1)
        time.sleep(5)  # past its first heartbeat
        kill_tree(serve)  # the machine goes down: serve and the run it started, without a word to the server
        deadline = time.time() + 240  # 3 heartbeats of 30 s, and the automation's evaluation
        while api.state(flow_run) == "RUNNING":
            assert time.time() < deadline, "the run left by the killed serve is still RUNNING"
            time.sleep(3)
        assert api.state(flow_run) == "CRASHED"
    finally:
        for process in (serve, server):
            if process is not None:
                stop(process)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
def test_mlflow_ui_shows_registered_model_with_staging_alias(tmp_path):
    import mlflow
    from playwright.sync_api import sync_playwright

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(store)
    client.create_registered_model("alignflow-policy", description="browser check")
    experiment = client.create_experiment("ui-check", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    client.create_model_version("alignflow-policy", f"runs:/{run.info.run_id}/policy", run.info.run_id)
    client.set_registered_model_alias("alignflow-policy", "staging", "1")

    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = start(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env,
        tmp_path,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 120, server)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/#/models/alignflow-policy", timeout=60_000)
            page.get_by_text("staging").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "registry.png"))
            browser.close()
        assert "alignflow-policy" in body and "staging" in body
    finally:
        stop(server)
