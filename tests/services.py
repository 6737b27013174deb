"""The docker/ stack as real processes on free localhost ports, for tests: PostgreSQL (Debian's binaries), an S3
server (moto, standing in for MinIO), MLflow with basic auth on Postgres and S3 artifacts, and Prefect on Postgres.

Secrets are the variables `docker/.env.example` names (fresh random values per run), and MLflow's auth config is
`docker/mlflow-auth.ini` rendered the way the compose file renders it, so the stack and the tests cannot drift.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

DOCKER = Path(__file__).resolve().parents[1] / "docker"
BUCKET = "mlflow"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright):
    """Debian's chromium, headless, without the background services that would try to reach the internet."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def stack_variables() -> list[str]:
    """The secret names the compose file reads (docker/.env.example)."""
    lines = (DOCKER / ".env.example").read_text().splitlines()
    return [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]


def postgres_bin() -> Path | None:
    """Debian's server binaries (`apt-get install postgresql`), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_servers() -> str | None:
    """Why the stack cannot start here (for a skip reason), or None."""
    if postgres_bin() is None:
        return "PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run does)"
    for module in ("moto.server", "psycopg2", "boto3"):
        try:
            __import__(module)
        except ImportError:
            return f"python package for {module} missing (pip install -e '.[test]')"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen, auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:4]} exited early:\n{Path(process.log).read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2, auth=auth).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not up after {seconds}s")


def start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """A server logging to a file beside it: a pipe nobody reads fills up and blocks the server mid-request."""
    log = cwd / f"{Path(command[2] if command[1] == '-m' else command[0]).name}-{free_port()}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log = str(log)
    return process


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL `process` and every process under it, as a machine going down would end them."""
    import psutil

    for pid in [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Stack:
    secrets: dict[str, str]
    postgres_port: int
    s3_url: str
    mlflow_url: str
    prefect_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def postgres_url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://alignflow:{self.secrets['POSTGRES_PASSWORD']}@127.0.0.1:{self.postgres_port}/{database}"

    def client_env(self, user: str, password: str) -> dict[str, str]:
        """What a pipeline process needs to reach the stack as `user` (artifacts go through the MLflow server)."""
        env = {
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        return {**env, "PREFECT_API_URL": f"{self.prefect_url}/api"} if self.prefect_url else env

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=self.secrets["MINIO_ROOT_USER"],
            aws_secret_access_key=self.secrets["MINIO_ROOT_PASSWORD"],
            region_name="us-east-1",
        )


@contextlib.contextmanager
def running_stack(with_prefect: bool = True) -> Iterator[Stack]:
    """Start Postgres, S3, MLflow (basic auth) and optionally Prefect; stop them and delete their data after."""
    root = Path(tempfile.mkdtemp(prefix="alignflow-stack-"))
    root.chmod(0o755)  # the postgres user must reach its data folder inside
    values = {name: secrets.token_hex(12) for name in stack_variables()}
    values["MINIO_ROOT_USER"] = "alignflow"
    processes: list[subprocess.Popen] = []
    try:
        postgres_port = _start_postgres(root, values["POSTGRES_PASSWORD"])
        s3_port = free_port()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": values["MINIO_ROOT_USER"]}
        env["AWS_SECRET_ACCESS_KEY"] = values["MINIO_ROOT_PASSWORD"]
        moto = start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], env, root)
        processes.append(moto)
        stack = Stack(values, postgres_port, f"http://127.0.0.1:{s3_port}", "", processes=processes)
        wait_for(f"{stack.s3_url}/", 60, moto)
        stack.s3().create_bucket(Bucket=BUCKET)
        stack.mlflow_url = _start_mlflow(stack, root, env)
        if with_prefect:
            stack.prefect_url = _start_prefect(stack, root)
        yield stack
    finally:
        for process in reversed(processes):
            stop(process)
        _stop_postgres(root)
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user the Debian package creates."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _start_postgres(root: Path, password: str) -> int:
    binaries, data, port = postgres_bin(), root / "postgres", free_port()
    password_file = root / "pgpass"
    password_file.write_text(password)
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        shutil.chown(password_file, "postgres")
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "alignflow", f"--pwfile={password_file}"]
    subprocess.run(_as_postgres([*initdb, "--auth=scram-sha-256"]), check=True, capture_output=True)
    password_file.unlink()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"
    start_server = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start"]
    subprocess.run(_as_postgres(start_server), check=True, capture_output=True)
    env = {**os.environ, "PGPASSWORD": password}
    sql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "alignflow", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*sql, "-f", str(DOCKER / "init-databases.sql")], check=True, capture_output=True, env=env)
    return port


def _stop_postgres(root: Path) -> None:
    binaries, data = postgres_bin(), root / "postgres"
    if binaries and (data / "postmaster.pid").is_file():
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), check=False)


def render_auth_config(template: Path, variables: dict[str, str]) -> str:
    """docker/mlflow-auth.ini with its ${VARIABLES} filled in, as the compose file's mlflow service does."""
    return string.Template(template.read_text()).substitute(variables)


def _start_mlflow(stack: Stack, root: Path, env: dict[str, str]) -> str:
    port = free_port()
    auth_ini = root / "mlflow-auth.ini"
    auth_ini.write_text(
        render_auth_config(
            DOCKER / "mlflow-auth.ini",
            {**stack.secrets, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(stack.postgres_port)},
        )
    )
    env = {
        **env,
        "MLFLOW_S3_ENDPOINT_URL": stack.s3_url,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": stack.secrets["MLFLOW_FLASK_SERVER_SECRET_KEY"],
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": stack.secrets["MLFLOW_AUTH_ADMIN_PASSWORD"],
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": stack.postgres_url("mlflow"),  # not in argv, where `ps` would show it
    }
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--artifacts-destination",
        f"s3://{BUCKET}",
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = start(command, env, root)
    stack.processes.append(server)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health", 180, server)
    return url


def _start_prefect(stack: Stack, root: Path) -> str:
    server, url = start_prefect(root, stack.postgres_url("prefect", "postgresql+asyncpg"))
    stack.processes.append(server)
    return url


def start_prefect(root: Path, database_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """A Prefect server (its own SQLite file unless `database_url`); returns (process, base URL)."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = start(command, env, root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/api/health", 180, server)
    except AssertionError:
        stop(server)
        raise
    return server, url
