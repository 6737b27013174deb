"""Reproduce a registered version: its commit in a fresh work tree, its run's dvc.lock and params, its outputs.

`alignflow reproduce --version N [--verify]`: reads the version's lineage tags, adds a detached git worktree at
the recorded commit, restores the run's record (dvc.lock, params.yaml and the metrics and plots kept in git,
logged by the flow on the pipeline run; the commit's own files otherwise), `dvc pull`s the outputs (sharing this
checkout's DVC cache) and `dvc repro`s what no remote or cache holds. `--verify` then hashes every output the
version recorded, as the work tree holds it, against the recorded hash, compares the restored metrics/eval.json
with the version's `eval.*` tags, and requires `dvc status` to run and find nothing changed. `--recompute` instead
rebuilds every stage up to evaluate in the work tree (`dvc repro --force`) and checks the result: by the same
hashes on a machine of the version's kind (`lineage.machine.*`; a version that recorded none counts as one), and
on another kind by whether each recomputed evaluation metric lies in the 95 % interval the version recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alignflow.errors import AlignflowError, first_line
from alignflow.io import file_digest
from alignflow.precision import arithmetic
from alignflow.registry.lineage import params_hash
from alignflow.tracking import PARENT_RUN_ENV, STAGE_RUN_ENV

LINEAGE_PREFIX = "lineage.dvc."
MACHINE_PREFIX = "lineage.machine."


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


def reproduce(
    client, name: str, version: str, verify: bool, target: Path | None = None, recompute: bool = False
) -> Reproduction:
    """Materialise `name` version `version` in `target` (a new temporary folder by default). With `recompute`,
    rebuild every stage up to evaluate on this machine instead of fetching the outputs, and check them: bitwise
    on a machine of the version's kind, the evaluation within the version's intervals on another."""
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
    differs = machine_difference(tags)
    if differs:
        result.notes.append(differs)
    _share_cache(worktree)
    if recompute:
        _recompute(worktree)
        label = f"{name} version {version}"
        result.checks = verification(worktree, tags, label) if differs is None else within_intervals(worktree, tags)
        return result
    missing = _pull(worktree)
    if missing:
        result.notes.append(f"not on the remote or in the cache, so rebuilt with dvc repro: {', '.join(missing)}")
        _run(["dvc", "repro", *missing], worktree)
    if verify:
        result.checks = verification(worktree, tags, f"{name} version {version}")
    return result


def verification(worktree: Path, tags: dict[str, str], version: str) -> list[tuple[str, str, str]]:
    """(what, recorded, found) for every recorded output hashed as it lies in `worktree`, for the version's
    evaluation and for `dvc status`; a version that recorded no output hash has nothing to verify."""
    outputs = _recorded_outputs(tags)
    if not outputs:
        raise ReproduceError(f"{version}: no lineage.dvc.* tags, so there is no recorded output to verify against")
    checks = [(path, tags[f"{LINEAGE_PREFIX}{path}"], dvc_md5(worktree / path)) for path in outputs]
    checks.append(("metrics/eval.json", "the version's eval.* tags", _evaluation_found(worktree, tags)))
    changed = _changed_stages(worktree)
    checks.append(("dvc status", "up to date", "up to date" if not changed else f"changed: {', '.join(changed)}"))
    return checks


def machine_difference(tags: dict[str, str]) -> str | None:
    """A note when this machine computes differently from the one that made the version (`lineage.machine.*`):
    what `dvc repro` rebuilds here will not match bitwise, and `auto` may resolve to another precision."""
    recorded = {
        key.removeprefix(MACHINE_PREFIX): value for key, value in tags.items() if key.startswith(MACHINE_PREFIX)
    }
    here = {key: str(value).lower() for key, value in arithmetic().items()}
    if not recorded or recorded == here:
        return None
    made, this = (", ".join(f"{k}={kind.get(k, '?')}" for k in sorted(here)) for kind in (recorded, here))
    return f"made on another kind of machine ({made}; here {this}): stages rebuilt here give other outputs"


def within_intervals(worktree: Path, tags: dict[str, str]) -> list[tuple[str, str, str]]:
    """(metric, its recorded 95 % interval, what was recomputed) for every metric the version recorded with an
    interval; `found` repeats the interval when the recomputed value lies inside it (a match)."""
    path = worktree / "metrics" / "eval.json"
    found = json.loads(path.read_text()) if path.is_file() else {}
    checks = []
    for key in sorted(k for k in tags if k.startswith("eval.") and k.endswith("_ci_low")):
        metric = key.removeprefix("eval.").removesuffix("_ci_low")
        high = tags.get(f"eval.{metric}_ci_high")
        if high is None:
            continue
        interval = f"[{float(tags[key]):.4f}, {float(high):.4f}]"
        value = found.get(metric)
        inside = isinstance(value, (int, float)) and float(tags[key]) <= value <= float(high)
        checks.append((metric, interval, interval if inside else "missing" if value is None else f"{value:.4f}"))
    if not checks:
        raise ReproduceError("the version recorded no evaluation intervals (eval.*_ci_low/_ci_high) to compare with")
    return checks


def _recompute(worktree: Path) -> None:
    """`dvc repro --force evaluate` in the work tree, logging to an MLflow store of its own (registering nothing
    and touching no run of the store the version lives in)."""
    env = {k: v for k, v in os.environ.items() if k not in (PARENT_RUN_ENV, STAGE_RUN_ENV)}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{worktree / 'mlflow.db'}"
    done = subprocess.run(
        ["dvc", "repro", "--force", "evaluate"], cwd=worktree, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error:")]
        raise ReproduceError(
            f"dvc repro --force evaluate in {worktree}: {lines[0] if lines else first_line(done.stderr)}"
        )


def dvc_md5(path: Path) -> str:
    """DVC's md5 of a file, or of a folder (`<md5 of its sorted file list>.dir`); `missing` when absent."""
    if path.is_file():
        return file_digest(path, "md5")
    if not path.is_dir():
        return "missing"
    entries = [
        {"md5": file_digest(file, "md5"), "relpath": file.relative_to(path).as_posix()}
        for file in sorted(path.rglob("*"))
        if file.is_file()
    ]
    entries.sort(key=lambda entry: entry["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def _evaluation_found(worktree: Path, tags: dict[str, str]) -> str:
    """`the version's eval.* tags` when metrics/eval.json holds the same numbers, else what differs."""
    path = worktree / "metrics" / "eval.json"
    if not path.is_file():
        return "missing"
    found = json.loads(path.read_text())
    recorded = {key.removeprefix("eval."): float(value) for key, value in tags.items() if key.startswith("eval.")}
    differ = [
        key
        for key, value in recorded.items()
        if not isinstance(found.get(key), (int, float))
        or not math.isclose(found[key], value, rel_tol=1e-9, abs_tol=1e-12)
    ]
    if not recorded:
        return "no eval.* tags on the version"
    return "the version's eval.* tags" if not differ else f"differs in {', '.join(sorted(differ)[:5])}"


def _recorded_outputs(tags: dict[str, str]) -> list[str]:
    return sorted(key.removeprefix(LINEAGE_PREFIX) for key in tags if key.startswith(LINEAGE_PREFIX))


def _restore_run_record(client, run_id: str, worktree: Path, result: Reproduction) -> None:
    """The run's dvc.lock, params.yaml, metrics and plots, from the pipeline (parent) run the flow logged them to."""
    run = client.get_run(run_id)
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent:
        try:
            folder = Path(client.download_artifacts(parent, "pipeline", tempfile.mkdtemp(prefix="alignflow-run-")))
        except Exception as exc:  # the run predates run records, or its artifacts are unreachable
            result.notes.append(f"no run record on pipeline run {parent} ({first_line(exc)})")
        else:
            for file in folder.rglob("*"):
                if file.is_file():
                    (worktree / file.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(file, worktree / file.relative_to(folder))
            return
    result.notes.append("the run left no dvc.lock record: using the commit's dvc.lock and params.yaml")


def _share_cache(worktree: Path) -> None:
    """Point the work tree at this checkout's DVC cache (objects present here need no download) and at its remotes
    as this checkout resolves them: a relative remote URL would otherwise resolve from the work tree's folder."""
    cache = (Path.cwd() / _run(["dvc", "cache", "dir"], Path.cwd()).stdout.strip()).resolve()
    _run(["dvc", "config", "--local", "cache.dir", str(cache)], worktree)
    for line in _run(["dvc", "config", "--list"], Path.cwd()).stdout.splitlines():  # one key=value a line
        key, _, url = line.partition("=")
        if key.startswith("remote.") and key.endswith(".url"):
            _run(["dvc", "remote", "add", "--local", "--force", key[len("remote.") : -len(".url")], url], worktree)


def _pull(worktree: Path) -> list[str]:
    """`dvc pull` everything in dvc.lock; returns the stages with an output that could not be fetched."""
    pulled = _run(["dvc", "pull", "--allow-missing"], worktree, check=False)
    if pulled.returncode != 0:
        raise ReproduceError(f"dvc pull in {worktree} failed: {first_line(pulled.stderr or pulled.stdout)}")
    lock = yaml.safe_load((worktree / "dvc.lock").read_text()) if (worktree / "dvc.lock").is_file() else {}
    stages, uncached = (lock or {}).get("stages", {}), uncached_outputs(worktree / "dvc.yaml")
    return sorted(
        name
        for name, stage in stages.items()
        if any(o["path"] not in uncached and not (worktree / o["path"]).exists() for o in stage.get("outs", []))
    )


def uncached_outputs(pipeline: Path) -> set[str]:
    """Outputs with `cache: false` (metrics, plots) and top-level metrics: kept in git and in the run record,
    never on a DVC remote, so never pulled."""
    definition = (yaml.safe_load(pipeline.read_text()) or {}) if pipeline.is_file() else {}
    declared = {entry for entry in definition.get("metrics", []) if isinstance(entry, str)}
    return declared | {
        path
        for stage in definition.get("stages", {}).values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
        if isinstance(entry, dict)
        for path, options in entry.items()
        if (options or {}).get("cache") is False
    }


def _changed_stages(worktree: Path) -> list[str]:
    """The stages `dvc status` finds changed (deps, params, outs), leaving out the `machine` probe, which is always
    changed by design; a `dvc status` that fails is an error."""
    status = json.loads(_run(["dvc", "status", "--json"], worktree).stdout.strip() or "{}")
    return sorted(name for name, changes in status.items() if changes != ["always changed"])


def _run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ReproduceError(f"{' '.join(command)} in {cwd}: {first_line(done.stderr or done.stdout)}")
    return done
