"""Soak: scheduled runs of the tiny profile on a Prefect process work pool, the worker killed once mid-run.

Run: `python bench/soak.py [--runs 20] [--kill-run 8] [--interval 30] [--heartbeat 30] [--gc workspace]
[--out FILE.json]`. It runs the tiny profile once in a scratch folder and soaks a copy of that project whose prompts
come from a feed (and whose base model is that run's, fixed in a folder). It starts a Prefect server, deploys the flow
there with `alignflow deploy --interval` (one run at a time, heartbeats, the zombie-run automation), starts a process
worker, and after every finished run moves the prompts feed on, so that each run has new data to train on. During run
`--kill-run` it SIGKILLs the worker and every process under it while the run is in its align stage, and a new worker
starts, as a supervisor would. tests/soak.py holds the logic; tests/e2e/test_soak.py runs 2 in CI.

It prints one line per run (state, run time, DVC cache and remote size), the registry's versions with their gate
decisions, and what was left: MLflow runs still RUNNING, processes, listening ports. Exit 1 if any check fails.
`--out` saves the settings, the runs' outcome in figures and the failed checks as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignflow.remote import GC_POLICIES  # noqa: E402
from alignflow.timing import machine  # noqa: E402
from bench.record import save  # noqa: E402
from tests.project import make_project  # noqa: E402
from tests.project import run as run_in  # noqa: E402
from tests.soak import soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kill-run", type=int, default=8)
    parser.add_argument("--interval", type=int, default=30, help="seconds between scheduled runs")
    parser.add_argument("--heartbeat", type=int, default=30, help="flow-run heartbeat seconds (Prefect's minimum)")
    parser.add_argument("--gc", choices=GC_POLICIES, default="workspace")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one, kept)")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="alignflow-soak-"))
    template = make_project(root / "template" / "project")
    run_in(["alignflow", "run"], template)
    report = soak(template, root / "soak", args.runs, args.kill_run, args.interval, args.heartbeat, args.gc)
    print(f"{'run':>3}  {'state':9} {'seconds':>8} {'cache MB':>9} {'remote MB':>10}  name")
    for number, run in enumerate(report.runs, 1):
        killed = "  <- worker killed" if run["id"] == report.killed_run else ""
        print(f"{number:>3}  {run['state']:9} {run['seconds']:>8} {run['cache_mb']:>9} {run['remote_mb']:>10}  "
              f"{run['name']}{killed}")  # fmt: skip
    ran = {run["id"] for run in report.runs}
    made = [v for v in report.versions if v["flow_run_id"] in ran]
    for version in report.versions:
        decisions = ", ".join(f"{k.split('.')[1]}={v}" for k, v in sorted(version["decision"].items()))
        print(f"version {version['version']}: {decisions or 'NO DECISION'}  aliases={version['aliases']}")
    cache = [r["cache_mb"] for r in report.runs if r["state"] == "COMPLETED"]
    print(f"{len(report.runs)} runs in {report.seconds / 60:.1f} min; {len(made)} versions registered; "
          f"MLflow runs marked KILLED after the kill: {len(report.killed_mlflow_runs)}; DVC cache "
          f"{min(cache, default=0)}-{max(cache, default=0)} MB (policy {args.gc}), remote "
          f"{report.runs[-1]['remote_mb'] if report.runs else 0} MB; scratch folder {root}")  # fmt: skip
    problems = report.problems()
    for check, found in problems.items():
        print(f"FAIL {check}: {found}")
    completed = [r["seconds"] for r in report.runs if r["state"] == "COMPLETED"]
    killed = [r["state"] for r in report.runs if r["id"] == report.killed_run]
    save(
        args.out,
        {
            "machine": machine(),
            "runs": args.runs,
            "kill_run": args.kill_run,
            "interval_seconds": args.interval,
            "heartbeat_seconds": args.heartbeat,
            "gc": args.gc,
            "runs_finished": len(report.runs),
            "runs_completed": len(completed),
            "killed_run_state": killed[0] if killed else None,
            "minutes": round(report.seconds / 60, 1),
            "run_seconds_median": round(statistics.median(completed), 1) if completed else None,
            "run_seconds_max": max(completed, default=None),
            "versions_registered": len(made),
            "mlflow_runs_marked_killed": len(report.killed_mlflow_runs),
            "dvc_cache_mb_min": min(cache, default=0),
            "dvc_cache_mb_max": max(cache, default=0),
            "dvc_remote_mb": report.runs[-1]["remote_mb"] if report.runs else 0,
            "failed_checks": list(problems),
        },
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
