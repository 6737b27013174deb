"""Where a model came from: git commit (and dirty flag), DVC hashes of its inputs and outputs, a params hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from alignflow import paths
from alignflow.precision import resolved_precisions
from alignflow.tracking import git_commit

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


def git_state(pipeline_file: Path = Path("dvc.yaml")) -> dict[str, str]:
    """Commit and whether the tree differs from it in source or config. Files the pipeline itself rewrites
    (dvc.lock and the git-tracked outputs dvc.yaml declares: metrics/, plots/) do not make a run dirty;
    every other change is listed in `git_changes`."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.splitlines()
    written = pipeline_written(pipeline_file)
    changed = [line[3:].split(" -> ")[-1].strip('"') for line in status]
    changes = [path for path in changed if not any(path == w or path.startswith(f"{w}/") for w in written)]
    state = {"git_commit": git_commit(), "git_dirty": str(bool(changes)).lower()}
    return {**state, "git_changes": " ".join(changes)[:5000]} if changes else state


def pipeline_written(pipeline_file: Path = Path("dvc.yaml")) -> set[str]:
    """dvc.lock and every output, metric and plot path that dvc.yaml declares (top-level metrics too: the flow's)."""
    if not pipeline_file.is_file():
        return set()
    pipeline = yaml.safe_load(pipeline_file.read_text()) or {}
    entries = [*pipeline.get("metrics", [])]
    for stage in pipeline.get("stages", {}).values():
        entries += [entry for kind in ("outs", "metrics", "plots") for entry in stage.get(kind, [])]
    declared = {next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries}
    return {str(pipeline_file.with_suffix(".lock")), *declared}


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


def machine_tags(params) -> dict[str, str]:
    """`lineage.machine.*`: the arithmetic the stages ran with (metrics/machine.json), and `lineage.precision.*`: what
    each section's precision resolved to there. `reproduce` compares them with the machine it runs on."""
    kind = json.loads(paths.MACHINE.read_text()) if paths.MACHINE.is_file() else {}
    tags = {f"lineage.machine.{key}": str(value).lower() for key, value in kind.items()}
    return {**tags, **{f"lineage.precision.{k}": v for k, v in resolved_precisions(params).items()}}
