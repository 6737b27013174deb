"""Where a model came from: git commit (and dirty flag), DVC hashes of its inputs and outputs, a params hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

LINEAGE_OUTPUTS = (
    "data/raw",
    "data/dedup",
    "data/tokenized/sft",
    "data/tokenized/reward",
    "data/tokenized/prompts",
    "models/base",
    "models/sft",
    "models/reward",
    "models/policy",
)


def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": git("rev-parse", "HEAD") or "unknown", "git_dirty": str(bool(dirty)).lower()}


def dvc_hashes(lock_file: Path = Path("dvc.lock"), outputs=LINEAGE_OUTPUTS) -> dict[str, str]:
    """md5 of each output as recorded in dvc.lock (what `dvc checkout` would restore)."""
    if not lock_file.is_file():
        return {}
    lock = yaml.safe_load(lock_file.read_text()) or {}
    found = {
        out["path"]: out.get("md5", "") for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])
    }
    return {path: found[path] for path in outputs if path in found}


def params_hash(params_file: Path = Path("params.yaml")) -> str:
    canonical = json.dumps(yaml.safe_load(params_file.read_text()), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def lineage_tags() -> dict[str, str]:
    tags = {f"lineage.{k}": v for k, v in git_state().items()}
    tags.update({f"lineage.dvc.{path}": md5 for path, md5 in dvc_hashes().items()})
    tags["lineage.params_hash"] = params_hash()
    return tags
