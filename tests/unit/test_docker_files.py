"""The compose stack is well formed and wires the services together (images cannot be pulled here to run it)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_stack_wires_mlflow_prefect_and_the_scheduler():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "mlflow", "prefect-server", "scheduler"} <= set(services)
    assert "--app-name basic-auth" in services["mlflow"]["command"]
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert "s3://mlflow" in services["mlflow"]["command"] and "string.Template" in services["mlflow"]["command"]
    for service in services.values():  # reachable from this machine only, unless someone widens it on purpose
        assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", []))
    assert services["scheduler"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert services["scheduler"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["scheduler"]["command"] == "alignflow serve"
    for service in services.values():
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()
    env_keys = {line.split("=")[0] for line in (DOCKER / ".env.example").read_text().splitlines() if line}
    assert {"POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"} <= env_keys


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (v1) validates the file when installed"
)
def test_docker_compose_accepts_the_file():
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(DOCKER / "compose.yaml"),
            "--env-file",
            str(DOCKER / ".env.example"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
