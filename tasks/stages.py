"""Prefect task that runs one pipeline stage through DVC and returns its metrics.

DVC stays the only judge of what is up to date and the only writer of dvc.lock: the task asks DVC
whether the stage changed, and if so runs `dvc repro --single-item <stage>` in a fresh process.
No Prefect result cache is used, since a cached task would skip code that writes a DVC output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alignflow.errors import ERROR_PREFIX
from alignflow.paths import metrics_file


class StageFailed(RuntimeError):
    """A stage exited non-zero; the message carries its one-line error when it printed one."""

    def __init__(self, message: str, user_error: bool):
        super().__init__(message)
        self.user_error = user_error


def worth_retrying(task, task_run, state) -> bool:
    """Bad input or config fails the same way every time; retry only failures without a one-line error."""
    failure = getattr(state, "data", None)
    return not (isinstance(failure, StageFailed) and failure.user_error)


def stage_is_up_to_date(name: str) -> bool:
    from dvc.repo import Repo

    with Repo(".") as repo:
        return not repo.status(targets=[name])


def read_metrics(name: str) -> dict[str, Any]:
    path = metrics_file(name)
    return json.loads(path.read_text()) if path.is_file() else {}


@task(
    name="stage", task_run_name="{name}", tags=["alignflow"], cache_policy=NO_CACHE, retry_condition_fn=worth_retrying
)
def repro_stage(name: str) -> dict[str, Any]:
    """{"stage", "ran", "metrics"} for one stage; raises StageFailed with the stage's error line."""
    logger = get_run_logger()
    if stage_is_up_to_date(name):
        logger.info("stage %s is up to date (dvc status): skipped", name)
        return {"stage": name, "ran": False, "metrics": read_metrics(name)}
    process = subprocess.Popen(
        ["dvc", "repro", "--single-item", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path.cwd(),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # progress lines as they happen
    last_error = ""
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        if line:
            logger.info(line)
        if line.startswith(ERROR_PREFIX) and not last_error:
            last_error = line.removeprefix(ERROR_PREFIX)
    _, status, usage = os.wait4(process.pid, 0)  # resource use of `dvc repro` and the stage process it waited for
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise StageFailed(f"stage {name} failed: {last_error or f'exit code {process.returncode}'}", bool(last_error))
    return {"stage": name, "ran": True, "metrics": read_metrics(name), "peak_rss_bytes": peak_rss_bytes(usage)}


def peak_rss_bytes(usage) -> int:
    """The largest resident set of a process in the stage's tree, as `/usr/bin/time -v` reports it (ru_maxrss is
    in kilobytes on Linux, bytes on macOS)."""
    return usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
