"""Reproduce a registered version: its commit in a fresh work tree, its run's dvc.lock and params, its outputs.

`alignflow reproduce --version N [--verify]`: reads the version's lineage tags, adds a detached git worktree at
the recorded commit, restores the run's dvc.lock and params.yaml (logged by the flow on the pipeline run; the
commit's own files otherwise), `dvc pull`s the outputs (sharing this checkout's DVC cache) and `dvc repro`s what
no remote or cache holds. `--verify` then checks each output the version recorded against what was restored.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alignflow.errors import AlignflowError, first_line
from alignflow.registry.lineage import dvc_hashes, params_hash

LINEAGE_PREFIX = "lineage.dvc."


class ReproduceError(AlignflowError):
    """A version whose lineage cannot be followed (no commit, commit not in this repository, ...)."""


@dataclass
class Reproduction:
    worktree: Path
    commit: str
    notes: list[str] = field(default_factory=list)
    """What could not be reproduced exactly, and why (a dirty tree, a missing run record, changed params)."""
    checks: list[tuple[str, str, str]] = field(default_factory=list)
    """(output path, md5 the version recorded, md5 restored) for every output the version names."""

    @property
    def matched(self) -> bool:
        return all(recorded == restored for _, recorded, restored in self.checks)


def reproduce(client, name: str, version: str, verify: bool, target: Path | None = None) -> Reproduction:
    """Materialise `name` version `version` in `target` (a new temporary folder by default)."""
    tags = client.get_model_version(name, version).tags
    commit = tags.get("lineage.git_commit", "unknown")
    if commit == "unknown":
        raise ReproduceError(f"{name} version {version}: no lineage.git_commit tag, so nothing to check out")
    worktree = target or Path(tempfile.mkdtemp(prefix=f"alignflow-{name}-v{version}-"))
    _run(["git", "worktree", "add", "--detach", "--force", str(worktree), commit], Path.cwd())
    result = Reproduction(worktree, commit)
    if tags.get("lineage.git_dirty") == "true":
        result.notes.append(
            f"registered from a tree with uncommitted changes ({tags.get('lineage.git_changes', 'not listed')}): "
            f"only commit {commit[:12]} can be restored, so outputs may differ"
        )
    _restore_run_record(client, client.get_model_version(name, version).run_id, worktree, result)
    recorded_params = tags.get("lineage.params_hash")
    if recorded_params and params_hash(worktree / "params.yaml") != recorded_params:
        result.notes.append("params.yaml differs from the one the version was trained with (params hash)")
    _share_cache(worktree)
    missing = _pull(worktree)
    if missing:
        result.notes.append(f"not on the remote or in the cache, so rebuilt with dvc repro: {', '.join(missing)}")
        _run(["dvc", "repro", *missing], worktree)
    if verify:  # the restored dvc.lock's hashes count only if the files on disk match it (dvc status)
        restored = dvc_hashes(worktree / "dvc.lock", outputs=_recorded_outputs(tags))
        changed = _changed_outputs(worktree)
        for path in _recorded_outputs(tags):
            found = "workspace differs from dvc.lock" if path in changed else restored.get(path, "missing")
            result.checks.append((path, tags[f"{LINEAGE_PREFIX}{path}"], found))
    return result


def _recorded_outputs(tags: dict[str, str]) -> list[str]:
    return sorted(key.removeprefix(LINEAGE_PREFIX) for key in tags if key.startswith(LINEAGE_PREFIX))


def _restore_run_record(client, run_id: str, worktree: Path, result: Reproduction) -> None:
    """The run's dvc.lock and params.yaml, from the pipeline (parent) run the flow logged them to."""
    run = client.get_run(run_id)
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent:
        try:
            folder = Path(client.download_artifacts(parent, "pipeline", tempfile.mkdtemp(prefix="alignflow-run-")))
        except Exception as exc:  # the run predates run records, or its artifacts are unreachable
            result.notes.append(f"no run record on pipeline run {parent} ({first_line(exc)})")
        else:
            for name in ("dvc.lock", "params.yaml"):
                if (folder / name).is_file():
                    shutil.copy(folder / name, worktree / name)
            return
    result.notes.append("the run left no dvc.lock record: using the commit's dvc.lock and params.yaml")


def _share_cache(worktree: Path) -> None:
    """Point the work tree at this checkout's DVC cache (objects present here need no download) and at its remotes
    as this checkout resolves them: a relative remote URL would otherwise resolve from the work tree's folder."""
    cache = (Path.cwd() / _run(["dvc", "cache", "dir"], Path.cwd()).stdout.strip()).resolve()
    _run(["dvc", "config", "--local", "cache.dir", str(cache)], worktree)
    for line in _run(["dvc", "remote", "list"], Path.cwd()).stdout.splitlines():
        name, url = line.split()[:2]
        _run(["dvc", "remote", "add", "--local", "--force", name, url], worktree)


def _pull(worktree: Path) -> list[str]:
    """`dvc pull` everything in dvc.lock; returns the stages with an output that could not be fetched."""
    pulled = _run(["dvc", "pull", "--allow-missing"], worktree, check=False)
    if pulled.returncode != 0:
        raise ReproduceError(f"dvc pull in {worktree} failed: {first_line(pulled.stderr or pulled.stdout)}")
    lock = yaml.safe_load((worktree / "dvc.lock").read_text()) if (worktree / "dvc.lock").is_file() else {}
    stages, uncached = (lock or {}).get("stages", {}), _uncached_outputs(worktree / "dvc.yaml")
    return sorted(
        name
        for name, stage in stages.items()
        if any(o["path"] not in uncached and not (worktree / o["path"]).exists() for o in stage.get("outs", []))
    )


def _uncached_outputs(pipeline: Path) -> set[str]:
    """Outputs with `cache: false` (metrics, plots): kept in git, never on a DVC remote, so never pulled."""
    stages = (yaml.safe_load(pipeline.read_text()) or {}).get("stages", {}) if pipeline.is_file() else {}
    return {
        path
        for stage in stages.values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
        if isinstance(entry, dict)
        for path, options in entry.items()
        if (options or {}).get("cache") is False
    }


def _changed_outputs(worktree: Path) -> set[str]:
    """Outputs whose files differ from dvc.lock (`dvc status`: modified, deleted, not in cache)."""
    status = yaml.safe_load(_run(["dvc", "status", "--json"], worktree, check=False).stdout.strip() or "{}") or {}
    return {
        path
        for changes in status.values()
        for change in changes
        if isinstance(change, dict)
        for path in change.get("changed outs", {})
    }


def _run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ReproduceError(f"{' '.join(command)} in {cwd}: {first_line(done.stderr or done.stdout)}")
    return done
