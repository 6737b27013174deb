"""The production stack for real, on localhost: the tiny pipeline runs against MLflow with basic auth on
PostgreSQL with S3 artifacts, and a Prefect server on PostgreSQL (the session's tiny project, registered again
there). Who may do what is enforced by the server, and no password ends up in the database, the artifact store
or the project."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.project import copy_project, project_env, ran_stages, run
from tests.services import BUCKET, CHROMIUM, launch_chromium, missing_servers, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_servers() is not None, reason=str(missing_servers()))]
USERS = {"pipeline": secrets.token_hex(10), "reader": secrets.token_hex(10)}


@pytest.fixture(scope="module")
def stack():
    with running_stack() as started:
        yield started


@pytest.fixture(scope="module")
def users(stack):
    from mlflow.server import get_app_client

    admin = {
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": stack.secrets["MLFLOW_AUTH_ADMIN_PASSWORD"],
    }
    saved = {key: os.environ.get(key) for key in admin}
    os.environ.update(admin)
    try:
        auth = get_app_client("basic-auth", tracking_uri=stack.mlflow_url)
        for name, password in USERS.items():
            auth.create_user(name, password)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return USERS


@pytest.fixture(scope="module")
def pipeline_run(stack, users, tmp_path_factory, tiny_pipeline):
    """The session's tiny project without its local MLflow store and registration, run again against the stack:
    the flow reruns register (its output is gone), which logs and registers through the server."""
    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("stack") / "project")
    (project / "mlflow.db").unlink()
    shutil.rmtree(project / "mlruns", ignore_errors=True)
    (project / "metrics/register.json").unlink()
    env = {**project_env(project), **stack.client_env("pipeline", users["pipeline"])}
    flow = run(["alignflow", "run"], project, env)
    assert ran_stages(flow) == ["machine", "register"]
    return project, env


def as_user(stack, project: Path, user: str) -> dict[str, str]:
    return {**project_env(project), **stack.client_env(user, USERS[user])}


def test_the_tiny_pipeline_registers_through_the_authenticated_server_with_artifacts_in_s3(stack, pipeline_run):
    import mlflow

    project, env = pipeline_run
    assert json.loads((project / "metrics/register.json").read_text())["version"] == 1
    assert not (project / "mlruns").exists() and not (project / "mlflow.db").exists()  # all went to the server
    keys = [
        item["Key"]
        for page in stack.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]
    assert any(key.endswith("model.safetensors") for key in keys), keys[:20]

    os.environ.update({k: v for k, v in env.items() if k.startswith("MLFLOW_TRACKING")})
    try:
        client = mlflow.MlflowClient(stack.mlflow_url)
        (version,) = client.search_model_versions("name='alignflow-policy'")
        assert version.tags["lineage.git_dirty"] == "false"
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)


def test_the_pipeline_account_promotes_a_reader_loads_but_is_refused_an_alias_move(stack, pipeline_run):
    project, env = pipeline_run
    promoted = run(
        ["alignflow", "promote", "--version", "1", "--to", "staging", "--force", "--reason", "stack check"],
        project,
        env,
    )
    assert "promoted to @staging" in promoted.stdout or "already @staging" in promoted.stdout

    reader = as_user(stack, project, "reader")
    load = "import mlflow; print(mlflow.pyfunc.load_model('models:/alignflow-policy@staging').predict(['Tea?']))"
    loaded = subprocess.run([sys.executable, "-c", load], cwd=project, env=reader, capture_output=True, text=True)
    assert loaded.returncode == 0 and loaded.stdout.startswith("["), loaded.stderr[-2000:]

    refused = run(
        ["alignflow", "promote", "--version", "1", "--to", "production", "--force", "--reason", "try"],
        project,
        reader,
        check=False,
    )
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 1 and len(errors) == 1, refused.stderr[-2000:]
    assert "permission denied" in errors[0] and "reader" in errors[0]


def test_a_wrong_password_is_one_line_and_registers_nothing(stack, pipeline_run):
    project, env = pipeline_run
    wrong = {**env, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    refused = run([sys.executable, "-m", "alignflow.stages.register"], project, wrong, check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 1 and len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert errors[0].startswith("error: registering alignflow-policy") and "credentials" in errors[0]
    assert "not-the-password" not in refused.stderr + refused.stdout
    listed = "import mlflow; print(len(mlflow.MlflowClient().search_model_versions(\"name='alignflow-policy'\")))"
    versions = subprocess.run([sys.executable, "-c", listed], cwd=project, env=env, capture_output=True, text=True)
    assert versions.stdout.strip() == "1", versions.stderr[-2000:]


def test_outputs_pushed_to_the_s3_remote_pull_into_a_fresh_clone_with_the_recorded_hashes(stack, pipeline_run):
    project, env = pipeline_run
    stack.s3().create_bucket(Bucket="alignflow-dvc")
    s3_env = {
        **env,
        "AWS_ACCESS_KEY_ID": stack.secrets["MINIO_ROOT_USER"],
        "AWS_SECRET_ACCESS_KEY": stack.secrets["MINIO_ROOT_PASSWORD"],
    }
    run(["dvc", "remote", "modify", "--local", "stack", "endpointurl", stack.s3_url], project, s3_env)
    run(["alignflow", "push", "--remote", "stack"], project, s3_env)
    run(["git", "add", "-A"], project, s3_env)
    run(["git", "commit", "-qm", "tiny run"], project, s3_env)
    clone = project.parent / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], project.parent, s3_env)
    clone_env = {**s3_env, **{k: v for k, v in project_env(clone).items() if k.startswith("DVC_")}}
    run(["dvc", "remote", "modify", "--local", "stack", "endpointurl", stack.s3_url], clone, clone_env)
    run(["alignflow", "pull", "--remote", "stack"], clone, clone_env)
    status = json.loads(run(["dvc", "status", "--json"], clone, clone_env).stdout)
    assert status == {"machine": ["always changed"]}, (
        status
    )  # every output the lock file records is present, with the recorded hash
    for output in ("models/policy/model.safetensors", "data/tokenized/sft"):
        assert (clone / output).exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
def test_the_model_version_page_behind_auth_shows_lineage_and_the_gate_decision(stack, pipeline_run):
    import mlflow
    from playwright.sync_api import sync_playwright

    project, env = pipeline_run
    os.environ.update({k: v for k, v in env.items() if k.startswith("MLFLOW_TRACKING")})
    try:
        tags = mlflow.MlflowClient(stack.mlflow_url).get_model_version("alignflow-policy", "1").tags
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)
    page_url = f"{stack.mlflow_url}/#/models/alignflow-policy/versions/1"
    assert requests.get(page_url, timeout=30).status_code == 401  # no page without logging in
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            reader = browser.new_context(http_credentials={"username": "reader", "password": USERS["reader"]})
            page = reader.new_page()
            page.goto(page_url, timeout=60_000)
            page.get_by_text("gate.staging.decision").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            page.screenshot(path=str(project / "model_version.png"), full_page=True)
        finally:
            browser.close()
    for key in ("lineage.git_commit", "lineage.params_hash", "gate.staging.decision", "gate.staging.reason"):
        assert key in body and tags[key][:40] in body, key


def test_no_secret_is_stored_in_the_databases_the_buckets_or_the_project(stack, pipeline_run):
    """Last in the module, after every push: every secret the stack was given (all but the S3 user name) and
    every user's password, searched for in both databases, every bucket (the MLflow artifacts and the DVC remote)
    and the project, `.git` included."""
    project, _ = pipeline_run
    secrets_given = [*USERS.values(), *(v for k, v in stack.secrets.items() if k != "MINIO_ROOT_USER")]
    dump_env = {**os.environ, "PGPASSWORD": stack.secrets["POSTGRES_PASSWORD"]}
    for database in ("mlflow", "prefect"):
        dump = subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-p", str(stack.postgres_port), "-U", "alignflow", database],
            capture_output=True,
            text=True,
            env=dump_env,
            check=True,
        ).stdout
        assert "CREATE TABLE" in dump and not [p for p in secrets_given if p in dump], database
    s3 = stack.s3()
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert {BUCKET, "alignflow-dvc"} <= set(buckets)
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                assert not [p for p in secrets_given if p.encode() in body], f"{bucket}/{item['Key']}"
    for file in (p for p in project.rglob("*") if p.is_file()):
        content = file.read_bytes()
        assert not [p for p in secrets_given if p.encode() in content], file
