"""A throwaway copy of the project (git + DVC initialised) for integration and end-to-end tests, and copies of a
project the tiny pipeline already ran in, so that the e2e modules share one run (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = (
    "alignflow",
    "flows",
    "tasks",
    "configs",
    "data/samples",
    "data/hh-rlhf",
    "data/benchmarks",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


REMOTE = "alignflow-dvc-remote"
"""The default DVC remote's folder, beside the project (.dvc/config: ../../alignflow-dvc-remote)."""
NOT_COPIED = (".dvc-site", ".prefect", "tmp")
"""Per-checkout state a copy starts without: DVC's site cache and state database, Prefect's home."""


def make_project(target: Path, profile: str | None = "tiny") -> Path:
    """Copy the project's tracked inputs to `target`, init git + DVC there, apply `profile`, commit. The DVC
    remote is `target`'s sibling: give each project a folder of its own (`mktemp(...) / "project"`)."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / name)
    env = project_env(target)
    run(["git", "init", "-q"], target, env)
    if profile:
        from alignflow.config import apply_overlay, load_profile

        apply_overlay(target / "params.yaml", load_profile(profile, target / "configs"), profile=profile)
    run(["git", "add", "-A"], target, env)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "init"], target, env)
    return target


def project_env(target: Path) -> dict[str, str]:
    """Environment for commands in the copy: its own MLflow store, Prefect home and DVC site cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "ALIGNFLOW_PARENT"))}
    env.update(
        PREFECT_HOME=str(target / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        DVC_SITE_CACHE_DIR=str(target / ".dvc-site"),
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    return env


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env or project_env(cwd), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def ran_stages(flow: subprocess.CompletedProcess) -> list[str]:
    """The stages an `alignflow run` ran, in order (its summary prints `<stage>: ran` for each)."""
    return [entry.removesuffix(": ran") for entry in flow.stdout.splitlines() if entry.endswith(": ran")]


def changed_stages(project: Path) -> set[str]:
    """What `dvc status` finds changed, leaving out the `machine` probe (always changed by design)."""
    import json

    status = json.loads(run(["dvc", "status", "--json"], project).stdout.strip() or "{}")
    return {name for name, changes in status.items() if changes != ["always changed"]}


def copy_project(built: Path, target: Path) -> Path:
    """A copy of a project the pipeline ran in that shares nothing writable with it: files and git history
    copied, the DVC cache and remote hard-linked (DVC never rewrites an object in place), and its own MLflow store
    (the SQLite database and artifacts copied, every recorded path moved to the copy)."""

    def link_objects(source: str, destination: str) -> None:
        if f"{os.sep}.dvc{os.sep}cache{os.sep}" in source:
            os.link(source, destination)
        else:
            shutil.copy2(source, destination)

    shutil.copytree(
        built, target, symlinks=True, ignore=shutil.ignore_patterns(*NOT_COPIED), copy_function=link_objects
    )
    if (built.parent / REMOTE).is_dir():
        shutil.copytree(built.parent / REMOTE, target.parent / REMOTE, copy_function=os.link)
    if (target / "mlflow.db").is_file():
        _move_recorded_paths(target / "mlflow.db", str(built), str(target))
    return target


def _move_recorded_paths(database: Path, old: str, new: str) -> None:
    """Rewrite `old` to `new` in every text column of an MLflow SQLite store (artifact locations, model sources)."""
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for _, column, kind, *_ in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in kind.upper() or "TEXT" in kind.upper():
                    connection.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                        (old, new, old),
                    )
