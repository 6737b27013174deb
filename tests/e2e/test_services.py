"""Servers started by the test on 127.0.0.1: a Prefect server that schedules `alignflow serve`'s deployment, and
the MLflow UI showing a registered model and its `staging` alias in headless Chromium."""

from __future__ import annotations

import os
import sys
import time

import pytest
import requests

from tests.project import make_project, project_env
from tests.services import CHROMIUM, free_port, launch_chromium, start, stop, wait_for

pytestmark = pytest.mark.slow


def test_serve_registers_a_deployment_with_the_cron_schedule(tmp_path):
    make_project(tmp_path, profile=None)  # serve loads flows/pipeline.py from the checkout it runs in
    port = free_port()
    env = {
        **project_env(tmp_path),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    server = start(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path
    )
    serve = None
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", 120, server)
        serve = start(["alignflow", "serve", "--cron", "15 4 * * *"], env, tmp_path)
        deadline, found = time.time() + 120, []
        while time.time() < deadline and not found:
            response = requests.post(f"http://127.0.0.1:{port}/api/deployments/filter", json={}, timeout=5)
            found = [d for d in response.json() if d["name"] == "alignflow-scheduled"]
            time.sleep(2)
        assert found, "no deployment registered"
        crons = [s["schedule"].get("cron") for s in found[0]["schedules"]]
        assert crons == ["15 4 * * *"]
        deadline, runs = time.time() + 60, []
        while time.time() < deadline and not runs:  # the server's scheduler creates the upcoming runs
            runs = requests.post(
                f"http://127.0.0.1:{port}/api/flow_runs/filter",
                timeout=5,
                json={"deployments": {"id": {"any_": [found[0]["id"]]}}},
            ).json()
            time.sleep(2)
        assert runs and all(r["state_type"] == "SCHEDULED" for r in runs)
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
