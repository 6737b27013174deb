"""The `alignflow` command: run the pipeline or one stage, schedule it, and manage registry promotions.

    alignflow run [--profile tiny] [--set dedup.threshold=0.85 ...] [--engine prefect|dvc] [--gc workspace]
    alignflow stage NAME [--force]
    alignflow serve                      # Prefect deployment on params `schedule.cron`, run by this process
    alignflow deploy --pool NAME [--interval S] [--gc workspace]  # on a work pool: a Prefect worker runs it
    alignflow registry                   # versions, aliases, gate decisions
    alignflow promote --version N --to staging|production [--force --reason "..."]
    alignflow evaluate --prompts FILE [--model models:/alignflow-policy@staging] [--out report.json]
    alignflow benchmark [FOLDER | --model URI | --version N] [--suite ifeval] [--limit N]  # IFEval, logged
    alignflow push | pull [TARGET ...] [--remote NAME]   # the DVC remote (.dvc/config)
    alignflow reproduce --version N [--verify | --recompute]  # a registered version in a fresh work tree
    alignflow serve-model [--alias staging | --version N] [--port 5001]  # POST /invocations -> completions
A profile and --set values are written into params.yaml (as `dvc exp run -S` does), so DVC tracks them.
`run` and `stage` hold the checkout's run lock (.alignflow.lock): a second one refuses at once, naming the holder.
Prefect, MLflow and the stage code are imported inside the commands that need them, so that `alignflow --help` and
the other commands start fast.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alignflow import tracking
from alignflow.config import PARAMS_FILE, apply_overlay, load_params, load_profile, parse_assignments
from alignflow.errors import AlignflowError, report
from alignflow.evaluation.statistics import format_interval
from alignflow.registry.client import gate_and_promote, list_versions, refused_as_one_line, version_metrics
from alignflow.remote import GC_POLICIES
from alignflow.runlock import Lock, run_lock

if TYPE_CHECKING:
    from prefect import Flow


def _apply(profile: str | None, assignments: list[str]) -> None:
    if profile:
        apply_overlay(PARAMS_FILE, load_profile(profile), profile=profile)
        print(f"params.yaml: applied profile {profile!r} (see `git diff params.yaml`)")
    if assignments:
        apply_overlay(PARAMS_FILE, parse_assignments(assignments))
        print(f"params.yaml: set {', '.join(assignments)}")
    load_params()


def _quiet_services() -> None:
    """Offline-friendly defaults for the orchestrator (telemetry off), unless the user set them. The ephemeral API
    server can take over Prefect's 20 s default to start on a busy 2-core machine: allow it 90 s."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _announce(lock: Lock) -> None:
    """Say so when the lock was left by a run that was killed."""
    if lock.took_over is not None:
        old = lock.took_over
        print(
            f"{lock.path}: took over the lock of pid {old.get('pid', '?')} (started {old.get('started', '?')}), "
            "which is no longer running",
            file=sys.stderr,
        )


def project_flow() -> Flow:
    """The Prefect flow of the project in the current folder. flows/ and tasks/ are the project's orchestration
    code, run from its checkout as dvc.yaml is (and as a work pool's deployment loads it), not installed
    packages: names as generic as these would collide with other projects' in site-packages."""
    root = Path.cwd()
    if not (root / "flows" / "pipeline.py").is_file():
        raise AlignflowError(f"flows/pipeline.py: not found in {root}; run alignflow in the project's folder")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from flows.pipeline import pipeline

    return pipeline


def cmd_run(args: argparse.Namespace) -> int:
    with run_lock() as lock:  # before params.yaml is rewritten, so a refused run changes nothing
        _announce(lock)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    _apply(args.profile, args.set or [])
    if args.engine == "dvc":
        code = subprocess.call(["dvc", "repro", *(args.stages or [])])
        if code == 0 and load_params().flow.push:
            from alignflow import remote

            print(f"dvc push: {remote.push()}")
        return code
    _quiet_services()
    pipeline = project_flow()
    from tasks.stages import StageFailed  # importable once project_flow() has put the project on sys.path

    try:
        results = pipeline(stages=args.stages, gc=args.gc)
    except StageFailed as exc:
        report(exc)
        return 1
    for name, result in results.items():
        print(f"{name}: {'ran' if result['ran'] else 'up to date'}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    with run_lock() as lock:
        _announce(lock)
        _apply(args.profile, args.set or [])
        return subprocess.call(["dvc", "repro", "--single-item", *(["--force"] if args.force else []), args.name])


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the flow from this process as a deployment on the cron schedule from params (needs a Prefect server to
    schedule): one run at a time, and a run this process leaves behind when killed is marked Crashed."""
    from alignflow.deployment import Schedule, serve_here

    schedule = load_params().schedule
    _quiet_services()
    try:
        serve_here(
            project_flow(),
            args.name or schedule.deployment,
            Schedule(cron=args.cron or schedule.cron, timezone=schedule.timezone),
            args.heartbeat,
        )
    except ValueError as exc:
        raise AlignflowError(f"alignflow serve: {exc}") from None
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Register the flow as a deployment on a work pool (created as a process pool if missing), on the cron
    schedule from params: a `prefect worker` polling the pool (e.g. next to the Ray head) runs it from this
    checkout's folder, one run at a time, and a run whose worker died is marked Crashed (alignflow.deployment)."""
    from alignflow.deployment import Schedule, deploy_to_pool

    params = load_params()
    if not os.environ.get("PREFECT_API_URL"):
        raise AlignflowError(
            "alignflow deploy: PREFECT_API_URL is not set; point it at the Prefect server the worker polls "
            "(docker/ compose, or `prefect server start`)"
        )
    _quiet_services()
    pipeline = project_flow()
    name = args.name or params.schedule.deployment
    schedule = Schedule(cron=args.cron or params.schedule.cron, interval_seconds=args.interval,
                        timezone=params.schedule.timezone)  # fmt: skip
    try:
        deployment_id = deploy_to_pool(pipeline, str(Path.cwd()), args.pool, name, schedule, args.gc, args.heartbeat)
    except ValueError as exc:
        raise AlignflowError(f"alignflow deploy: {exc}") from None
    print(
        f"deployment {pipeline.name}/{name} ({deployment_id}) on work pool {args.pool!r}, one run at a time, "
        f"cache policy {args.gc!r}; run it with: prefect worker start --pool {args.pool}"
    )
    return 0


REGISTRY_INTERVALS = {
    "win_rate": "win_rate_policy_vs_sft",
    "lc_win_rate": "lc_win_rate_policy_vs_sft",
    "judge": "judge_win_rate_policy_vs_sft",
    "judge_lc": "judge_lc_win_rate_policy_vs_sft",
    "ifeval_vs_sft": "ifeval_diff_policy_sft",
}
"""`alignflow registry` columns shown as `value [ci_low, ci_high]` from each version's eval.* tags."""


def cmd_registry(args: argparse.Namespace) -> int:
    name = args.name or load_params().register.model_name
    client = tracking.client()
    rows = list_versions(client, name)
    metrics = {str(v.version): version_metrics(v) for v in client.search_model_versions(f"name='{name}'")}
    for row in rows:  # win rates as "value [ci_low, ci_high]" from the version's eval.* tags
        evals = metrics.get(row["version"], {})
        for column, key in REGISTRY_INTERVALS.items():
            row[column] = format_interval(evals, key) if key in evals else None
    columns = (
        "version",
        "aliases",
        "method",
        "reward",
        *REGISTRY_INTERVALS,
        "ifeval",
        "benchmark",
        "kl",
        "gate",
        "commit",
    )
    cells = [[str(row[c]) if row[c] is not None else "-" for c in columns] for row in rows]
    widths = [max([10, len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    print(f"{name}:")
    print("  ".join(f"{c:<{w}}" for c, w in zip(columns, widths)).rstrip())
    for line in cells:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths)).rstrip())
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from alignflow.data.presets import describe

    print(describe())
    print("\nOn an ingest source: `comparisons: {path: ..., preset: hh-rlhf}`; `fields:` renames its columns.")
    return 0


def cmd_constrain(args: argparse.Namespace) -> int:
    """A prompt file with IFEval-style constraints attached, decontaminated against IFEval's test prompts."""
    from alignflow.config import SourceParams
    from alignflow.data.validate import validate_source
    from alignflow.io import write_jsonl
    from alignflow.verifiers.constraints import with_constraints
    from alignflow.verifiers.decontamination import benchmark_prompts, check_decontaminated, task_text

    prompts = validate_source("prompts", SourceParams(str(args.prompts))).records
    constrained = with_constraints(prompts, args.seed, args.most, args.exclude)
    texts = [(line, task_text(record)) for line, record in enumerate(constrained, 1)]
    check_decontaminated(texts, benchmark_prompts(args.ifeval), str(args.prompts))
    write_jsonl(args.out, constrained)
    print(f"{len(constrained)} prompts with constraints: {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score SFT and a policy (the DVC output, or a registry version) on a prompt file; a separate report."""
    from alignflow import paths
    from alignflow.models.loading import allow_remote_code, download_registered_policy
    from alignflow.stages.evaluate import evaluate_prompt_file

    params = load_params()
    allow_remote_code(params.ingest.trust_remote_code)
    policy_dir = paths.POLICY
    if args.model:
        tracking.client()
        policy_dir = download_registered_policy(args.model)
    report = Path(args.out or f"reports/eval-{Path(args.prompts).stem}.json")
    metrics = evaluate_prompt_file(params, Path(args.prompts), policy_dir, report)
    headline = (*REGISTRY_INTERVALS.values(), "unfinished_sft", "unfinished_policy")
    print(
        f"{report}: {metrics['prompts']} prompts; "
        + ", ".join(f"{key} {format_interval(metrics, key)}" for key in headline if key in metrics)
    )
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    """IFEval on a registered version, a model folder or the base model; a registered version gets the results."""
    import dataclasses
    import tempfile
    import time

    from alignflow.chat import model_folder
    from alignflow.config import section_dict
    from alignflow.evaluation.benchmark import (
        benchmark_folder,
        log_to_version,
        resolve_version,
    )
    from alignflow.evaluation.ifeval import checker_version
    from alignflow.io import staged_outputs, write_json
    from alignflow.models.loading import allow_remote_code
    from alignflow.timing import machine

    params = load_params()
    allow_remote_code(params.ingest.trust_remote_code)
    name = params.register.model_name
    model = args.folder or args.model or f"models:/{name}" + (f"/{args.version}" if args.version else "@staging")
    config = dataclasses.replace(params.evaluate.ifeval, max_new_tokens=args.max_new_tokens, prompts=args.limit)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="alignflow-benchmark-") as scratch:
        client = tracking.client() if model.startswith("models:/") else None
        folder = model_folder(model, Path(scratch))
        version = resolve_version(client, model) if client else None
        metrics, answers = benchmark_folder(params, folder, config)
    label = f"{version.name}-v{version.version}" if version else Path(model).name
    out = args.out or Path(f"reports/benchmark-{args.suite}-{label}.json")
    record = {
        "model": model,
        "commit": version.tags.get("lineage.git_commit", "") if version else tracking.git_commit(),
        "recipe": {key: version.tags.get(f"lineage.{key}", "") for key in ("profile", "method")} if version else {},
        "suite": args.suite,
        "settings": section_dict(config),
        "checker": checker_version(),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "machine": machine(),
        "metrics": metrics,
        "answers": answers.record(),
    }
    with staged_outputs(out) as (path,):
        write_json(path, record)
    if version is not None:
        log_to_version(client, version, metrics, answers, params.common.experiment)
    shown = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose", "unfinished")
    print(f"{out}: {model}: " + ", ".join(f"{key} {metrics[f'ifeval_{key}_model']:.3f}" for key in shown))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """The same gate as the register stage, for a chosen version and alias; --force overrides with a reason."""
    if args.force and not args.reason:
        raise AlignflowError('promote --force needs --reason "why" (it is recorded on the version)')
    params = load_params()
    name = params.register.model_name
    with refused_as_one_line(f"promote {name} version {args.version} to @{args.to}"):
        decision = _promote(args, params, name)
    print(
        f"{name} version {args.version}: {'promoted to' if decision.promote else 'not promoted to'} @{args.to}: "
        f"{decision.reason}"
    )
    return 0 if decision.promote else 2


def _promote(args: argparse.Namespace, params, name: str):
    import mlflow

    with tracking.promotion_run(params.common.experiment, str(args.version), args.to):
        decision = gate_and_promote(
            mlflow.MlflowClient(),
            name,
            str(args.version),
            params.register,
            alias=args.to,
            force_reason=args.reason if args.force else None,
        )
        mlflow.log_params({"model": name, "version": args.version, "alias": args.to, "forced": args.force})
        mlflow.set_tags(decision.tags(args.to))
    return decision


def cmd_transfer(args: argparse.Namespace) -> int:
    """`dvc push` / `dvc pull` with one line when the remote does not answer."""
    from alignflow import remote

    transfer = remote.push if args.command == "push" else remote.pull
    print(f"dvc {args.command}: {transfer(args.targets, args.remote)}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Restore a registered version in a fresh git worktree and say what matched what it recorded."""
    from alignflow.reproduce import reproduce

    name = args.name or load_params().register.model_name
    checking = args.verify or args.recompute
    result = reproduce(tracking.client(), name, str(args.version), args.verify, args.into, args.recompute)
    print(f"{name} version {args.version}: commit {result.commit[:12]} checked out in {result.worktree}")
    for note in result.notes:
        print(f"  note: {note}")
    for what, recorded, found in result.checks:
        print(f"  {'match   ' if recorded == found else 'MISMATCH'} {what}: recorded {recorded}, found {found}")
    if checking:
        verdict = "every recorded output matched" if result.matched else "some outputs differ from the record"
        print(f"{name} version {args.version}: {verdict}")
        return 0 if result.matched else 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A registered version as a GGUF file (+ Ollama Modelfile), logged back on the version."""
    import time

    from alignflow.gguf_export import export_registered

    name = args.name or load_params().register.model_name
    started = time.monotonic()
    version, exported = export_registered(
        tracking.client(), name, args.version, args.alias, args.quant, args.out, args.force
    )
    print(
        f"{name} version {version}: {exported.path} ({exported.size_bytes / 1e6:.1f} MB, sha256 "
        f"{exported.sha256[:16]}, {time.monotonic() - started:.1f} s), logged on the version under gguf/"
    )
    print(f"  ollama create {name} -f {exported.modelfile}   # then: ollama run {name}")
    print(f"  llama-cli -m {exported.path} -cnv                # llama.cpp, chat template from the file")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from alignflow.chat import chat

    chat(args.model or f"models:/{load_params().register.model_name}@staging", args.max_new_tokens, args.temperature)
    return 0


def cmd_serve_model(args: argparse.Namespace) -> int:
    """MLflow's model server on a registry alias: `POST /invocations {"inputs": ["a prompt"]}` -> completions."""
    name = args.name or load_params().register.model_name
    uri = f"models:/{name}/{args.version}" if args.version else f"models:/{name}@{args.alias}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri()}
    print(f"serving {uri} on http://{args.host}:{args.port}/invocations", flush=True)
    command = ["mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "--host", args.host]
    os.execvpe("mlflow", [*command, "--port", str(args.port), "--workers", "1"], env)  # signals reach the server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_params(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile", help="overlay configs/<NAME>.yaml onto params.yaml (e.g. tiny)")
        sub.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one parameter")

    run = commands.add_parser("run", help="run the pipeline (Prefect flow by default)")
    with_params(run)
    run.add_argument(
        "--engine",
        choices=("prefect", "dvc"),
        default="prefect",
        help="prefect: the flow (logs, retries, UI); dvc: plain `dvc repro`",
    )
    run.add_argument("--stages", nargs="+", help="run only these stages (in pipeline order)")
    run.add_argument(
        "--gc", choices=GC_POLICIES, default="none", help="local DVC cache policy after the run's push (prefect)"
    )
    run.set_defaults(func=cmd_run)

    stage = commands.add_parser("stage", help="run one stage through DVC")
    with_params(stage)
    stage.add_argument("name", help="a dvc.yaml stage, e.g. sft (`dvc repro --single-item`: only this stage)")
    stage.add_argument("--force", action="store_true", help="run even if DVC considers it up to date")
    stage.set_defaults(func=cmd_stage)

    serve = commands.add_parser("serve", help="serve the flow as a scheduled Prefect deployment")
    serve.add_argument("--name", help="deployment name (default: params schedule.deployment)")
    serve.add_argument("--cron", help="override params schedule.cron")
    serve.add_argument(
        "--heartbeat", type=int, default=60, metavar="SECONDS",
        help="flow-run heartbeat; a run silent for 3 of them (this process was killed) is marked Crashed",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)

    deploy = commands.add_parser("deploy", help="create the scheduled deployment on a Prefect work pool")
    deploy.add_argument("--pool", required=True, help="work pool (created as a process pool if it does not exist)")
    deploy.add_argument("--name", help="deployment name (default: params schedule.deployment)")
    deploy.add_argument("--cron", help="override params schedule.cron")
    deploy.add_argument("--interval", type=int, metavar="SECONDS", help="run every SECONDS instead of on the cron")
    deploy.add_argument(
        "--gc", choices=GC_POLICIES, default="none", help="local DVC cache policy after each pushed run"
    )
    deploy.add_argument(
        "--heartbeat", type=int, default=60, metavar="SECONDS",
        help="flow-run heartbeat; a run silent for 3 of them (its worker died) is marked Crashed",
    )  # fmt: skip
    deploy.set_defaults(func=cmd_deploy)

    registry = commands.add_parser("registry", help="list registered versions, aliases and gate decisions")
    registry.add_argument("--name", help="registered model (default: params register.model_name)")
    registry.set_defaults(func=cmd_registry)

    export = commands.add_parser("export", help="write a registered version as a GGUF file for llama.cpp / Ollama")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registry version number")
    which.add_argument("--alias", help="registry alias, e.g. staging")
    export.add_argument("--quant", choices=("f16", "q8_0"), default="f16", help="matrix precision (norms stay f32)")
    export.add_argument("--out", type=Path, help="output file (default: exports/<name>-v<N>.<quant>.gguf)")
    export.add_argument("--force", action="store_true", help="replace an existing output file")
    export.add_argument("--name", help="registered model (default: params register.model_name)")
    export.set_defaults(func=cmd_export)

    talk = commands.add_parser("chat", help="chat in the terminal with a registered version or a model folder")
    talk.add_argument("--model", help="models:/<name>@<alias>, models:/<name>/<N> or a folder (default: @staging)")
    talk.add_argument("--max-new-tokens", type=int, default=256, help="longest reply, in tokens")
    talk.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    talk.set_defaults(func=cmd_chat)

    presets = commands.add_parser("presets", help="list the public dataset schemas ingest reads, and their columns")
    presets.set_defaults(func=cmd_presets)

    evaluate = commands.add_parser("evaluate", help="score SFT and a policy on your own prompt file (JSONL id, prompt)")
    evaluate.add_argument("--prompts", required=True, help='JSONL file of {"id", "prompt"} records')
    evaluate.add_argument(
        "--model", help="a registry URI, e.g. models:/alignflow-policy@staging (default: models/policy)"
    )
    evaluate.add_argument("--out", help="report path (default: reports/eval-<prompts file name>.json)")
    evaluate.set_defaults(func=cmd_evaluate)

    bench = commands.add_parser("benchmark", help="score a registered version or a model folder on IFEval")
    bench.add_argument("folder", nargs="?", help="a model folder (e.g. models/base) instead of a registry version")
    bench.add_argument("--model", help="models:/<name>@<alias>, models:/<name>/<N> or a folder (default: @staging)")
    bench.add_argument("--version", type=int, help="a version of params register.model_name")
    bench.add_argument("--suite", choices=("ifeval",), default="ifeval", help="benchmark to run (IFEval only)")
    bench.add_argument("--limit", type=int, default=0, help="a seeded subset of N prompts (0: all 541)")
    bench.add_argument(
        "--max-new-tokens", type=int, default=1280, help="greedy decoding limit (default: lighteval's 1280)"
    )
    bench.add_argument("--out", type=Path, help="report (default: reports/benchmark-<suite>-<model>.json)")
    bench.set_defaults(func=cmd_benchmark)

    constrain = commands.add_parser(
        "constrain", help="attach seeded IFEval-style constraints to a prompt file (training data for verifiers)"
    )
    constrain.add_argument("prompts", type=Path, help="a JSONL prompt file ({id, prompt} records)")
    constrain.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    constrain.add_argument("--seed", type=int, default=42, help="draws the constraints (with each record's id)")
    constrain.add_argument("--most", type=int, default=3, help="constraints per prompt at most (at least one)")
    constrain.add_argument("--exclude", nargs="*", default=[], help="instruction ids never to draw")
    constrain.add_argument(
        "--ifeval",
        type=Path,
        default=Path("data/benchmarks/ifeval/input_data.jsonl"),
        help="IFEval's prompts, which no output prompt may overlap",
    )
    constrain.set_defaults(func=cmd_constrain)

    for action, what in (("push", "push outputs to"), ("pull", "fetch outputs from")):
        transfer = commands.add_parser(action, help=f"{what} the DVC remote (default: the one .dvc/config names)")
        transfer.add_argument("targets", nargs="*", help="stages or outputs (default: everything in dvc.lock)")
        transfer.add_argument("--remote", help="a remote named in .dvc/config (e.g. local, stack)")
        transfer.set_defaults(func=cmd_transfer)

    again = commands.add_parser("reproduce", help="restore a registered version in a fresh git worktree")
    again.add_argument("--version", required=True, type=int, help="the registered version to restore")
    again.add_argument("--verify", action="store_true", help="check every output against the version's record")
    again.add_argument(
        "--recompute",
        action="store_true",
        help="rebuild the stages here and compare: bitwise on the same kind of machine, else within the intervals",
    )
    again.add_argument("--name", help="registered model (default: params register.model_name)")
    again.add_argument("--into", type=Path, help="folder for the work tree (default: a new temporary folder)")
    again.set_defaults(func=cmd_reproduce)

    serve_model = commands.add_parser("serve-model", help="answer HTTP POST /invocations with a registered model")
    serve_model.add_argument("--alias", default="staging", help="serve the version this registry alias points to")
    serve_model.add_argument("--version", type=int, help="serve this version instead of the alias's")
    serve_model.add_argument("--name", help="registered model (default: params register.model_name)")
    serve_model.add_argument("--host", default="127.0.0.1", help="interface to bind (default: localhost only)")
    serve_model.add_argument("--port", type=int, default=5001, help="port to listen on")
    serve_model.set_defaults(func=cmd_serve_model)

    promote = commands.add_parser("promote", help="gate a version and move an alias to it")
    promote.add_argument("--version", required=True, type=int, help="version of params register.model_name to gate")
    promote.add_argument(
        "--to",
        required=True,
        choices=("staging", "production"),
        help="alias to move to the version (the gate compares it with the alias's current version)",
    )
    promote.add_argument("--force", action="store_true", help="promote even if the gate says no")
    promote.add_argument("--reason", help="why (required with --force; recorded on the version)")
    promote.set_defaults(func=cmd_promote)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except AlignflowError as exc:
        report(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
