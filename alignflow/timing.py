"""The run's timing record, metrics/timing.json: each stage's wall time, the run's total, and the machine that took
them (the same run takes much longer on a CPU without native bf16, so a time means nothing without its CPU;
docs/results.md shows each run's time beside its machine).

dvc.yaml declares the file as a top-level metric, so `dvc metrics diff` shows how times moved between commits.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from alignflow.io import write_json
from alignflow.paths import METRICS

TIMING_FILE = METRICS / "timing.json"


def cpu_model() -> str:
    """The processor's model name (/proc/cpuinfo on Linux; the platform's own name elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What a wall time depends on: CPU model, core count, whether bf16 is native here (what `auto` picks)."""
    import os

    from alignflow.precision import bf16_is_fast

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "native_bf16": bf16_is_fast()}


def write_timing(stages: dict[str, dict[str, Any]], total_seconds: float, path: Path = TIMING_FILE) -> None:
    """stages: {name: {"seconds": wall time, "ran": whether DVC ran it or found it up to date, "peak_rss_bytes":
    the largest resident set of its processes, when it ran}}. The run's peak is the largest stage's."""
    peaks = {name: round(s["peak_rss_bytes"] / 2**30, 2) for name, s in stages.items() if s.get("peak_rss_bytes")}
    write_json(
        path,
        {
            "total_minutes": round(total_seconds / 60, 2),
            "stage_minutes": {name: round(s["seconds"] / 60, 2) for name, s in stages.items()},
            "ran": {name: s["ran"] for name, s in stages.items()},
            "stage_peak_rss_gb": peaks,
            "peak_rss_gb": max(peaks.values(), default=None),
            **machine(),
        },
    )
