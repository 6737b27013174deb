"""The alignflow Prefect flow: runs the DVC stages in order under one MLflow parent run, records the run's
dvc.lock and params.yaml on that run, writes each stage's wall time to metrics/timing.json, and pushes the outputs to
the DVC remote (`flow.push`).

Run: `alignflow run` (or `python -m flows.pipeline`). Stage order must match dvc.yaml (a test checks).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from alignflow import tracking
from alignflow.config import load_params
from alignflow.errors import ConfigError
from alignflow.timing import write_timing
from flows.report import summary_markdown
from tasks.remote import push_outputs, record_run
from tasks.stages import read_metrics, run_stage

STAGES = ("machine", "ingest", "dedup", "tokenize", "sft", "reward", "baseline", "align", "evaluate", "register")


@flow(name="alignflow-pipeline")
def pipeline(stages: list[str] | None = None) -> dict[str, Any]:
    """Run `stages` (default: all, in DAG order); DVC skips the ones that are up to date."""
    params = load_params()
    selected = [name for name in STAGES if stages is None or name in stages]
    for where, names in (("stages", stages or ()), ("flow.timeout_seconds", params.flow.timeout_seconds)):
        unknown = set(names) - set(STAGES)
        if unknown:
            raise ConfigError(f"{where}: unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    logger = get_run_logger()
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
            task = run_stage.with_options(
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
    create_markdown_artifact(
        key="alignflow-summary",
        description="evaluation and promotion decision",
        markdown=summary_markdown(results, read_metrics("evaluate"), read_metrics("register")),
    )
    return results


if __name__ == "__main__":
    pipeline()
