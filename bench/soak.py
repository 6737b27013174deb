"""Soak: scheduled runs of the tiny profile on a Prefect process work pool, the worker killed once mid-run.

Run: `python bench/soak.py [--runs 20] [--kill-run 8] [--interval 30] [--heartbeat 30] [--gc workspace]`.
It runs the tiny profile once in a scratch folder and soaks a copy of that project whose prompts come from a feed
(and whose base model is that run's, fixed in a folder). It starts a Prefect server, deploys the flow there with
`alignflow deploy --interval` (one run at a time, heartbeats, the zombie-run automation), starts a process worker,
and after every finished run moves the prompts feed on, so that each run has new data to train on. During run
`--kill-run` it SIGKILLs the worker and every process under it while the run is in its align stage, and a new
worker starts, as a supervisor would. tests/soak.py holds the logic; tests/e2e/test_soak.py runs 2 in CI.

It prints one line per run (state, run time, DVC cache and remote size), the registry's versions with their gate
decisions, and what was left: MLflow runs still RUNNING, processes, listening ports. Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignflow.remote import GC_POLICIES  # noqa: E402
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
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
