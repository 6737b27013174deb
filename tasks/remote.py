"""Prefect tasks that keep a run's record and outputs where others can reach them: the lock file, the DVC remote."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alignflow import remote

RUN_RECORD = ("dvc.lock", "params.yaml")
"""Logged to the pipeline's MLflow run: what `alignflow reproduce` restores in a fresh work tree."""


@task(name="record-run", tags=["alignflow"], cache_policy=NO_CACHE)
def record_run() -> list[str]:
    """Log dvc.lock and params.yaml (as the run left them) to the active MLflow run, under `pipeline/`."""
    import mlflow

    logged = [name for name in RUN_RECORD if Path(name).is_file()]
    for name in logged:
        mlflow.log_artifact(name, "pipeline")
    return logged


@task(name="push-outputs", tags=["alignflow"], cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def push_outputs() -> str:
    """`dvc push` every output to the default remote; a remote that stays down fails with one line."""
    summary = remote.push()
    get_run_logger().info("dvc push: %s", summary)
    return summary
