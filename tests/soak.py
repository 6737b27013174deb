"""A soak of scheduled runs: the tiny profile on a Prefect process work pool with a compressed interval schedule,
new prompts arriving after every run, and the worker killed once mid-run (with every process it started, as when
its machine or container dies). `bench/soak.py` runs 20 runs; `tests/e2e/test_soak.py` a short variant.

What it records, for the caller to judge: each flow run's final state and time, the registry's versions with the
flow run that registered each and its gate decision, MLflow runs left RUNNING, the DVC cache and remote sizes after
each run, and the processes and listening ports left once the worker and server are stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from alignflow.runlock import RunLocked, run_lock
from tests.project import ROOT, copy_project, project_env, run
from tests.services import kill_tree, start, start_prefect, stop

POOL = "soak"
DEPLOYMENT = "soak"
FEED = Path("data/feed/prompts.jsonl")
"""The soak project's prompts source: a window of the shipped prompts that moves on after every run."""
FEED_SIZE = 32
BASE_MODEL = "base-model"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class SoakReport:
    runs: list[dict] = field(default_factory=list)
    """Per finished flow run, in order: {"id", "name", "state", "seconds", "cache_mb", "remote_mb"}."""
    killed_run: str = ""
    gc: str = "none"
    """The deployment's cache policy (alignflow.remote.GC_POLICIES)."""
    versions: list[dict] = field(default_factory=list)
    """Per registry version: {"version", "flow_run_id", "decision", "aliases"}."""
    registering_runs: list[str] = field(default_factory=list)
    """Flow runs whose MLflow parent run has a register stage run (each must have made exactly one version)."""
    running_mlflow_runs: list[str] = field(default_factory=list)
    killed_mlflow_runs: list[str] = field(default_factory=list)
    leaked_processes: list[str] = field(default_factory=list)
    leaked_ports: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def problems(self, max_cache_growth: float = 1.5) -> dict[str, object]:
        """What went wrong, by check; {} when the soak held up. The cache check applies to `gc: workspace`."""
        ran = {run["id"] for run in self.runs}
        made = sorted(v["flow_run_id"] for v in self.versions if v["flow_run_id"] in ran)
        registering = sorted(run_id for run_id in self.registering_runs if run_id in ran)
        cache = [run["cache_mb"] for run in self.runs if run["state"] == "COMPLETED"]
        found = {
            "versions per run that reached register (made, expected)": (made, registering)
            if made != registering
            else None,
            "a version from the killed run": self.killed_run in made,
            "versions without a gate decision": [v["version"] for v in self.versions if not v["decision"]],
            "MLflow runs still RUNNING": self.running_mlflow_runs,
            "the killed run's MLflow runs not marked KILLED": bool(self.killed_run) and not self.killed_mlflow_runs,
            "processes left": self.leaked_processes,
            "listening ports left": self.leaked_ports,
            "runs not COMPLETED, the killed one aside": [
                (run["name"], run["state"])
                for run in self.runs
                if run["state"] != "COMPLETED" and not (run["id"] == self.killed_run and run["state"] == "CRASHED")
            ],
            "DVC cache grew (MB after each completed run)": cache
            if self.gc == "workspace" and max(cache, default=0) > max_cache_growth * min(cache, default=0)
            else None,
        }
        return {check: what for check, what in found.items() if what}


def soak(
    template: Path,
    root: Path,
    runs: int,
    kill_run: int,
    interval: int = 30,
    heartbeat: int = 30,
    gc: str = "workspace",
) -> SoakReport:
    """`runs` scheduled runs in a copy (under `root`) of `template`, a project the tiny pipeline ran in; the worker
    dies during run `kill_run` (1-based, in its align stage)."""
    began = time.monotonic()
    project = _project(root / "project", template)
    server, url = start_prefect(root)
    env = {**project_env(project), "PREFECT_API_URL": f"{url}/api"}
    api = Api(url)
    report = SoakReport(gc=gc)
    worker = None
    try:
        run(["alignflow", "deploy", "--pool", POOL, "--name", DEPLOYMENT, "--interval", str(interval),
             "--gc", gc, "--heartbeat", str(heartbeat)], project, env)  # fmt: skip
        deployment = api.deployment_id(DEPLOYMENT)
        worker = _start_worker(project, env)
        seen: set[str] = set()
        paused = False
        while len(report.runs) < runs:
            if not paused and len(api.started_runs(deployment)) >= runs:  # schedule no more
                api.pause(deployment)
                api.drain(deployment)
                paused = True
            if len(report.runs) + 1 == kill_run and not report.killed_run:
                report.killed_run = _kill_during_align(api, deployment, worker)
                worker = _start_worker(project, env)  # a supervisor brings the worker back
            for flow_run in api.finished_runs(deployment):
                if flow_run["id"] not in seen and len(report.runs) < runs:
                    seen.add(flow_run["id"])
                    report.runs.append(_record(flow_run, project))
                    _advance_feed(project, len(seen) + 1)
            assert worker.poll() is None, f"the worker stopped:\n{Path(worker.log).read_text()[-3000:]}"
            time.sleep(2)
        api.settle(deployment)
        report.versions, report.registering_runs, report.running_mlflow_runs, report.killed_mlflow_runs = (
            _registry_and_runs(project)
        )
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
    time.sleep(2)
    left = _processes_in(root)
    report.leaked_processes = [f"{pid}: {text}" for pid, text in left.items()]
    report.leaked_ports = _ports_of(left)
    report.seconds = time.monotonic() - began
    return report


class Api:
    """The few Prefect REST calls the soak needs (the server's own API, as the UI uses it)."""

    def __init__(self, url: str):
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.url = f"{url}/api"
        self.http = requests.Session()  # a busy SQLite-backed server answers 503 now and then: retry those
        retry = Retry(total=8, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504), allowed_methods=None)
        self.http.mount("http://", HTTPAdapter(max_retries=retry))

    def deployment_id(self, name: str) -> str:
        response = self.http.get(f"{self.url}/deployments/name/alignflow-pipeline/{name}", timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    def flow_runs(self, deployment: str) -> list[dict]:
        body = {"deployments": {"id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        response = self.http.post(f"{self.url}/flow_runs/filter", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def started_runs(self, deployment: str) -> list[dict]:
        return [r for r in self.flow_runs(deployment) if r["state_type"] != "SCHEDULED"]

    def finished_runs(self, deployment: str) -> list[dict]:
        done = [r for r in self.flow_runs(deployment) if r["state_type"] in FINAL]
        return sorted(done, key=lambda r: r["end_time"] or "")

    def task_state(self, flow_run: str, task: str) -> str | None:
        body = {"flow_runs": {"id": {"any_": [flow_run]}}, "task_runs": {"name": {"any_": [task]}}}
        response = self.http.post(f"{self.url}/task_runs/filter", json=body, timeout=30)
        response.raise_for_status()
        states = [t["state_type"] for t in response.json()]
        return states[-1] if states else None

    def state(self, flow_run: str) -> str:
        response = self.http.get(f"{self.url}/flow_runs/{flow_run}", timeout=30)
        response.raise_for_status()
        return response.json()["state_type"]

    def pause(self, deployment: str) -> None:
        self.http.patch(f"{self.url}/deployments/{deployment}", json={"paused": True}, timeout=30).raise_for_status()

    def settle(self, deployment: str, seconds: float = 900) -> None:
        """Wait for every started run to end (one the worker took just before the schedule was paused)."""
        deadline = time.monotonic() + seconds
        while any(r["state_type"] not in FINAL for r in self.started_runs(deployment)):
            assert time.monotonic() < deadline, f"runs still going after {seconds}s"
            time.sleep(2)

    def drain(self, deployment: str) -> None:
        """Delete the runs not started yet (waiting for their turn, or due later)."""
        for flow_run in self.flow_runs(deployment):
            if flow_run["state_type"] == "SCHEDULED":
                response = self.http.delete(f"{self.url}/flow_runs/{flow_run['id']}", timeout=30)
                if response.status_code != 404:  # already gone (a retried request deleted it)
                    response.raise_for_status()


def _project(path: Path, template: Path) -> Path:
    """A copy of `template` whose prompts come from the feed and whose base model is the template's, fixed in a
    folder: the tiny profile otherwise builds its model from the prompts, and every new prompt would retrain all."""
    project = copy_project(template, path)
    shutil.copytree(template / "models/base", project / BASE_MODEL)
    params = project / "params.yaml"
    text = params.read_text()
    for shipped, ours in (
        ("path: data/samples/prompts.jsonl", f"path: {FEED}"),
        ("model: tiny", f"model: {BASE_MODEL}"),
    ):
        assert text.count(shipped) == 1, shipped
        text = text.replace(shipped, ours)  # the rest byte for byte
    params.write_text(text)
    _write_feed(project, 1)  # not the shipped prompts: the first run has new data too
    env = project_env(project)
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-qm", "soak: prompts from the feed, a fixed base model"], project, env)
    return project


def _write_feed(project: Path, window: int) -> None:
    lines = (ROOT / "data/samples/prompts.jsonl").read_text().splitlines()
    start_at = (window * 8) % len(lines)
    chosen = (lines + lines)[start_at : start_at + FEED_SIZE]
    target = project / FEED
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".tmp")
    staged.write_text("\n".join(chosen) + "\n")
    staged.replace(target)


def _advance_feed(project: Path, window: int) -> None:
    """New prompts arrive, written while no run works in the checkout (under its run lock)."""
    cwd = Path.cwd()
    os.chdir(project)
    try:
        while True:
            try:
                with run_lock():
                    _write_feed(project, window)
                return
            except RunLocked:
                time.sleep(1)
    finally:
        os.chdir(cwd)


def _start_worker(project: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
    return start(command, {**env, "PREFECT_WORKER_QUERY_SECONDS": "5"}, project)


def _kill_during_align(api: Api, deployment: str, worker: subprocess.Popen) -> str:
    """Wait until a run is in its align stage, then SIGKILL the worker and every process under it."""
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        for flow_run in api.flow_runs(deployment):
            if flow_run["state_type"] == "RUNNING" and api.task_state(flow_run["id"], "align") == "RUNNING":
                time.sleep(3)  # into the stage's work, past its start-up
                kill_tree(worker)
                return flow_run["id"]
        time.sleep(1)
    raise AssertionError("no run reached its align stage within 30 min")


def _record(flow_run: dict, project: Path) -> dict:
    return {
        "id": flow_run["id"],
        "name": flow_run["name"],
        "state": flow_run["state_type"],
        "seconds": round(flow_run.get("total_run_time") or 0.0, 1),
        "cache_mb": _megabytes(project / ".dvc/cache"),
        "remote_mb": _megabytes(project.parent / "alignflow-dvc-remote"),
    }


def _registry_and_runs(project: Path) -> tuple[list[dict], list[str], list[str], list[str]]:
    """Registry versions (with the flow run behind each), the flow runs that ran register, and the MLflow runs
    RUNNING or KILLED, read from the project's store by a separate process (its own MLflow configuration)."""
    script = """
import json, mlflow
from alignflow import tracking
from alignflow.config import load_params
params = load_params()
client = tracking.client()
experiment = client.get_experiment_by_name(params.common.experiment)
runs = client.search_runs([experiment.experiment_id], max_results=5000)
by_id = {r.info.run_id: r for r in runs}
flow_run_of = lambda r: by_id[r.data.tags["mlflow.parentRunId"]].data.tags.get("prefect.flow_run_id")
model = client.get_registered_model(params.register.model_name)
aliases = {}
for alias, version in model.aliases.items():
    aliases.setdefault(str(version), []).append(alias)
versions = [
    {"version": v.version, "flow_run_id": flow_run_of(by_id[v.run_id]),
     "decision": {k: t for k, t in v.tags.items() if k.startswith("gate.") and k.endswith(".decision")},
     "aliases": sorted(aliases.get(str(v.version), []))}
    for v in sorted(client.search_model_versions(f"name='{params.register.model_name}'"), key=lambda v: int(v.version))
]
registering = [flow_run_of(r) for r in runs if r.data.tags.get("alignflow.stage") == "register"]
print(json.dumps([versions, registering,
    [r.info.run_id for r in runs if r.info.status == "RUNNING"],
    [r.info.run_id for r in runs if r.info.status == "KILLED"]]))
"""
    output = run([sys.executable, "-c", script], project).stdout
    return tuple(json.loads(output.strip().splitlines()[-1]))


def _megabytes(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
    return round(total / 2**20, 1)


def _processes_in(root: Path) -> dict[int, str]:
    """Processes still running that were started for the soak (its folder on their command line or as cwd), by
    pid, with their command lines; other work on the machine is not the soak's to judge."""
    left = {}
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        text = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        if str(root) in text and process.pid != os.getpid():
            left[process.pid] = text[:200]
    return left


def _ports_of(processes: dict[int, str]) -> list[str]:
    return [
        f"{c.laddr.port}: {processes[c.pid]}"
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in processes
    ]
