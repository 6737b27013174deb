"""A throwaway copy of the project (git + DVC initialised) for integration and end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = (
    "alignflow",
    "flows",
    "tasks",
    "configs",
    "data/samples",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


def make_project(target: Path, profile: str | None = "tiny") -> Path:
    """Copy the project's tracked inputs to `target`, init git + DVC there, apply `profile`, commit."""
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
