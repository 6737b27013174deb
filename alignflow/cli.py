"""The `alignflow` command: run the pipeline (Prefect flow or plain DVC) or one stage.

    alignflow run [--profile tiny] [--set dedup.threshold=0.85 ...] [--engine prefect|dvc]
    alignflow stage NAME [--force]
A profile and --set values are written into params.yaml (as `dvc exp run -S` does), so DVC tracks them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from alignflow.config import PARAMS_FILE, apply_overlay, load_params, load_profile, parse_assignments
from alignflow.errors import AlignflowError


def _apply(profile: str | None, assignments: list[str]) -> None:
    if profile:
        apply_overlay(PARAMS_FILE, load_profile(profile), profile=profile)
        print(f"params.yaml: applied profile {profile!r} (see `git diff params.yaml`)")
    if assignments:
        apply_overlay(PARAMS_FILE, parse_assignments(assignments))
        print(f"params.yaml: set {', '.join(assignments)}")
    load_params()


def _quiet_services() -> None:
    """Offline-friendly defaults for the orchestrator (telemetry off), unless the user set them."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def cmd_run(args: argparse.Namespace) -> int:
    _apply(args.profile, args.set or [])
    if args.engine == "dvc":
        return subprocess.call(["dvc", "repro", *(args.stages or [])])
    _quiet_services()
    from flows.pipeline import pipeline  # the orchestrator lives outside the library
    from tasks.stages import StageFailed

    try:
        results = pipeline(stages=args.stages)
    except StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, result in results.items():
        print(f"{name}: {'ran' if result['ran'] else 'up to date'}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    _apply(args.profile, args.set or [])
    return subprocess.call(["dvc", "repro", "--single-item", *(["--force"] if args.force else []), args.name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_params(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile", help="overlay configs/<NAME>.yaml onto params.yaml (e.g. tiny)")
        sub.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one parameter")

    run = commands.add_parser("run", help="run the pipeline (Prefect flow by default)")
    with_params(run)
    run.add_argument("--engine", choices=("prefect", "dvc"), default="prefect",
                     help="prefect: the flow (logs, retries, UI); dvc: plain `dvc repro`")
    run.add_argument("--stages", nargs="+", help="run only these stages (in pipeline order)")
    run.set_defaults(func=cmd_run)

    stage = commands.add_parser("stage", help="run one stage through DVC")
    with_params(stage)
    stage.add_argument("name")
    stage.add_argument("--force", action="store_true", help="run even if DVC considers it up to date")
    stage.set_defaults(func=cmd_stage)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except AlignflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
