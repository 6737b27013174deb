"""Prefect tasks that keep a run's record and outputs where others can reach them: the lock file, the DVC remote."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alignflow import remote
from alignflow.reproduce import uncached_outputs

RUN_RECORD = ("dvc.lock", "params.yaml")
"""Logged to the pipeline's MLflow run with the metrics and plots git keeps: what `alignflow reproduce` restores
in a fresh work tree, so that a version's own evaluation comes back with it."""


@task(name="record-run", tags=["alignflow"], cache_policy=NO_CACHE)
def record_run() -> list[str]:
    """Log dvc.lock, params.yaml and the `cache: false` outputs (as the run left them) to the active MLflow run,
    under `pipeline/`, each at its path in the project."""
    import mlflow

    names = [*RUN_RECORD, *sorted(uncached_outputs(Path("dvc.yaml")))]
    logged = [name for name in names if Path(name).is_file()]
    for name in logged:
        folder = Path("pipeline") / Path(name).parent
        mlflow.log_artifact(name, folder.as_posix())
    return logged


@task(name="push-outputs", tags=["alignflow"], cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def push_outputs() -> str:
    """`dvc push` every output to the default remote; a remote that stays down fails with one line."""
    summary = remote.push()
    get_run_logger().info("dvc push: %s", summary)
    return summary


@task(name="dvc-gc", tags=["alignflow"], cache_policy=NO_CACHE)
def collect_garbage(policy: str) -> str:
    """Apply the cache policy (alignflow.remote.GC_POLICIES) once the run's outputs are pushed."""
    summary = remote.collect_garbage(policy)
    get_run_logger().info("dvc gc (%s): %s", policy, summary)
    return summary
