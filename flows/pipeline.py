"""The alignflow Prefect flow: runs the DVC stages in order under one MLflow parent run, records the run's
dvc.lock and params.yaml on that run, writes each stage's wall time to metrics/timing.json, and pushes the outputs to
the DVC remote (`flow.push`).

It holds the checkout's run lock, so a scheduled run and a manual one never work in the same checkout at once, and
it first marks KILLED the MLflow runs a killed run left RUNNING. With `gc="workspace"` it applies the cache policy
of scheduled runs after the push (`alignflow.remote.collect_garbage`).

Run: `alignflow run` (or `python -m flows.pipeline`). Stage order must match dvc.yaml (a test checks).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from alignflow import tracking
from alignflow.config import Params, load_params
from alignflow.errors import ConfigError
from alignflow.remote import GC_POLICIES
from alignflow.runlock import run_lock
from alignflow.timing import write_timing
from flows.report import summary_markdown
from tasks.remote import collect_garbage, push_outputs, record_run
from tasks.stages import read_metrics, repro_stage

STAGES = ("machine", "ingest", "dedup", "tokenize", "sft", "reward", "baseline", "align", "evaluate", "register")


@flow(name="alignflow-pipeline")
def pipeline(stages: list[str] | None = None, gc: str = "none") -> dict[str, Any]:
    """Run `stages` (default: all, in DAG order); DVC skips the ones that are up to date. `gc`: the DVC cache
    policy applied after a pushed run (`none` keeps everything; `workspace` keeps only what this checkout uses)."""
    params = load_params()
    selected = [name for name in STAGES if stages is None or name in stages]
    for where, names in (("stages", stages or ()), ("flow.timeout_seconds", params.flow.timeout_seconds)):
        unknown = set(names) - set(STAGES)
        if unknown:
            raise ConfigError(f"{where}: unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    if gc not in GC_POLICIES:
        raise ConfigError(f"gc: unknown policy {gc!r}; policies are {', '.join(GC_POLICIES)}")
    if gc != "none" and not params.flow.push:
        raise ConfigError(f"gc: {gc!r} deletes cached outputs only a pushed run can spare; set flow.push: true")
    logger = get_run_logger()
    with run_lock() as lock:
        if lock.took_over is not None:
            logger.warning("took over the run lock of pid %s, which is no longer running", lock.took_over.get("pid"))
        reaped = tracking.reap_orphaned_runs(params.common.experiment)
        if reaped:
            logger.warning("marked KILLED %d MLflow run(s) a killed run left RUNNING: %s", len(reaped), reaped)
        results = _repro_stages(params, selected, logger)
        if gc != "none":
            collect_garbage(gc)
    create_markdown_artifact(
        key="alignflow-summary",
        description="evaluation and promotion decision",
        markdown=summary_markdown(results, read_metrics("evaluate"), read_metrics("register")),
    )
    return results


def _repro_stages(params: Params, selected: list[str], logger: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    timing: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    tags = {
        "alignflow.orchestrator": "prefect",
        "prefect.flow_run_id": str(flow_run.get_id()),
        "alignflow.profile": params.profile,
    }
    with tracking.pipeline_run(params.common.experiment, run_name=flow_run.get_name() or "pipeline", tags=tags):
        for name in selected:
            options = params.flow
            task = repro_stage.with_options(
                retries=options.retries,
                retry_delay_seconds=options.retry_delay_seconds,
                timeout_seconds=options.timeout_seconds.get(name, options.default_timeout_seconds),
            )
            stage_started = time.monotonic()
            results[name] = task(name)
            timing[name] = {
                "seconds": time.monotonic() - stage_started,
                "ran": results[name]["ran"],
                "peak_rss_bytes": results[name].get("peak_rss_bytes"),
            }
            logger.info("%s: %s", name, "ran" if results[name]["ran"] else "up to date")
        write_timing(timing, time.monotonic() - started)
        record_run()
        if params.flow.push:
            push_outputs()
    return results


if __name__ == "__main__":
    pipeline()
