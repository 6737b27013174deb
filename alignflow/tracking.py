"""MLflow conventions: SQLite store by default, one parent run per pipeline run, one nested run per stage.

The orchestrating flow opens the parent run and passes its id in ALIGNFLOW_PARENT_RUN_ID. Under plain
`dvc repro` there is no orchestrator, so stages find (or open) a parent run keyed by the `dvc`
process that launched them: all stages of one `dvc repro` group under one parent run.
mlflow is imported inside the functions, so that `alignflow --help` and the modules that only need
`is_main_process` or the constants here start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from alignflow.runlock import is_stale, process_holder

if TYPE_CHECKING:
    from mlflow import MlflowClient

PARENT_RUN_ENV = "ALIGNFLOW_PARENT_RUN_ID"
STAGE_RUN_ENV = "ALIGNFLOW_STAGE_RUN_ID"
"""Set in Ray Train workers: the stage run their launching process opened, which rank 0 logs into."""
LAUNCHER_TAG = "alignflow.launcher"
OWNER_TAG = "alignflow.owner"
"""The process that opened a run ({"pid", "host", "started"}, as the run lock records it): once it is gone, a run
still RUNNING was left behind by a kill (`reap_orphaned_runs`)."""


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file at the project root (cwd of every stage)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def configure(experiment: str) -> str:
    """Point MLflow at the store and experiment; return the experiment id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.set_experiment(experiment).experiment_id


def client() -> MlflowClient:
    """An MlflowClient on the project's store (and the module-level mlflow API pointed at it too)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.MlflowClient()


@contextlib.contextmanager
def promotion_run(experiment: str, version: str, alias: str) -> Iterator[Any]:
    """The run that records a promotion asked for by a person (`alignflow promote`); the decision goes on it."""
    import mlflow

    configure(experiment)
    with mlflow.start_run(
        run_name=f"promote v{version} -> @{alias}",
        tags={"alignflow.kind": "promotion", "alignflow.git_commit": git_commit()},
    ) as run:
        yield run


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextlib.contextmanager
def pipeline_run(experiment: str, run_name: str = "pipeline", tags: dict[str, str] | None = None) -> Iterator[str]:
    """Open the parent run of a pipeline run; stages started meanwhile nest under it."""
    import mlflow

    configure(experiment)
    with mlflow.start_run(
        run_name=run_name,
        tags={"alignflow.kind": "pipeline", "alignflow.git_commit": git_commit(), **_owner(), **(tags or {})},
    ) as run:
        previous = os.environ.get(PARENT_RUN_ENV)
        os.environ[PARENT_RUN_ENV] = run.info.run_id
        try:
            yield run.info.run_id
        finally:
            if previous is None:
                os.environ.pop(PARENT_RUN_ENV, None)
            else:
                os.environ[PARENT_RUN_ENV] = previous


@contextlib.contextmanager
def stage_run(stage: str, experiment: str, params: dict[str, Any]) -> Iterator[Any]:
    """A run for one stage, nested under the pipeline's parent run when there is one.

    In a process other than rank 0 of a multi-process run it yields None and logs nothing (one run per stage);
    in a Ray Train worker it continues the run its launching process opened.
    """
    import mlflow

    if not is_main_process():
        yield None
        return
    attached = os.environ.get(STAGE_RUN_ENV)
    if attached:
        mlflow.set_tracking_uri(tracking_uri())
        with mlflow.start_run(run_id=attached) as run:
            yield run
        return
    experiment_id = configure(experiment)
    parent_id, owns_parent = os.environ.get(PARENT_RUN_ENV), False
    if parent_id is None:
        parent_id = _dvc_parent_run(experiment_id)
        owns_parent = parent_id is not None
    status = "FAILED"
    try:
        with mlflow.start_run(
            run_name=stage,
            parent_run_id=parent_id,
            tags={"alignflow.stage": stage, "alignflow.git_commit": git_commit(), **_owner()},
        ) as run:
            mlflow.log_params({key: _param_value(value) for key, value in params.items()})
            yield run
        status = "FINISHED"
    finally:
        if owns_parent:
            mlflow.MlflowClient().set_terminated(parent_id, status)


def reap_orphaned_runs(experiment: str) -> list[str]:
    """Mark KILLED the runs a killed process left RUNNING (a worker or stage that died mid-run), so that searches
    and the UI stop showing them as live; returns their ids. Only runs opened on this host are judged: nothing
    here can tell whether a process elsewhere still runs."""
    import mlflow

    experiment_id = configure(experiment)
    client = mlflow.MlflowClient()
    reaped = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        try:
            owner = json.loads(run.data.tags.get(OWNER_TAG, ""))
            orphaned = is_stale(owner)
        except (ValueError, TypeError, KeyError):  # no owner recorded (an older run) or not one of ours
            continue
        if orphaned:
            client.set_terminated(run.info.run_id, "KILLED")
            reaped.append(run.info.run_id)
    return reaped


def _owner(process: psutil.Process | None = None) -> dict[str, str]:
    return {OWNER_TAG: json.dumps(process_holder(process or psutil.Process()), sort_keys=True)}


def is_main_process() -> bool:
    """Rank 0 (or the only process): under `accelerate launch` and Ray Train, RANK names the process."""
    return os.environ.get("RANK", "0") == "0"


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log to the active stage run; nothing where there is none (processes other than rank 0)."""
    import mlflow

    if mlflow.active_run():
        mlflow.log_metrics(metrics, step=step)


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _dvc_parent_run(experiment_id: str) -> str | None:
    """The parent run of the `dvc repro`/`dvc exp run` process that launched this stage, if any: the outermost
    dvc among the stage's ancestors, so that a dvc that runs some stages through a dvc child process of its own
    still gives one parent run per command."""
    import mlflow

    launcher = next((p for p in reversed(psutil.Process().parents()) if _is_dvc(p)), None)
    if launcher is None:
        return None
    key = f"{launcher.pid}-{launcher.create_time():.0f}"
    client = mlflow.MlflowClient()
    found = client.search_runs([experiment_id], filter_string=f"tags.`{LAUNCHER_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=_dvc_command(launcher.cmdline()),
        tags={
            LAUNCHER_TAG: key,
            "alignflow.kind": "pipeline",
            "alignflow.git_commit": git_commit(),
            **_owner(launcher),
        },
    )
    return run.info.run_id


def _dvc_command(cmdline: list[str]) -> str:
    """`dvc repro`, `dvc exp run` ... from the launcher's command line."""
    start = next(i for i, part in enumerate(cmdline) if Path(part).name == "dvc")
    words = [w for w in cmdline[start + 1 : start + 3] if not w.startswith("-")]
    return " ".join(["dvc", *words[: 2 if words[:1] == ["exp"] else 1]])


def _is_dvc(process) -> bool:
    try:
        return any(Path(part).name == "dvc" for part in process.cmdline()[:3])
    except Exception:  # the process may be gone or unreadable
        return False
