"""Model registry operations: log + register the policy and reward model, apply the gate, move aliases, list.

Every decision (promote or not, by the gate or forced by a person) is written on the model version as tags.
Alias moves happen under a lock with the current holder re-read inside it, so two registrations at once
still leave the alias on a version that passed the gate against whatever held it before.
mlflow is imported inside the functions, so that `alignflow --help` (whose module imports this one) starts fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import getpass
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import alignflow
from alignflow.config import RegisterParams
from alignflow.errors import AlignflowError, first_line
from alignflow.evaluation.fingerprint import differing_parts, from_tags
from alignflow.registry.gate import Decision, decide_promotion, gate_tag

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

T = TypeVar("T")
LOCK_FILE = Path(".alignflow-registry.lock")
CANDIDATE_TAG = "alignflow.candidate"
REQUIREMENTS = ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "mlflow")
SHIPPED_CODE_EXCLUDES = ("stages", "scale", "training", "cli.py", "__pycache__")
"""Parts of the alignflow package a registered model does not ship: the pipeline, not what the pyfunc model runs."""

log = logging.getLogger(__name__)


class RegistryUnavailable(AlignflowError):
    """The tracking server did not answer after the configured retries."""


def with_retries(action: Callable[[], T], attempts: int, delay: float, what: str) -> T:
    """Run `action`, retrying connection-type failures with a growing pause; then fail with one clear line."""
    import mlflow
    from mlflow.exceptions import MlflowException

    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (MlflowException, OSError, ConnectionError) as exc:
            if isinstance(exc, MlflowException) and exc.error_code not in (
                "TEMPORARILY_UNAVAILABLE",
                "INTERNAL_ERROR",
                "REQUEST_LIMIT_EXCEEDED",
            ):
                raise
            last = exc
            if attempt < attempts:
                log.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.0fs",
                    what,
                    attempt,
                    attempts,
                    first_line(exc),
                    delay * attempt,
                )
                time.sleep(delay * attempt)
    raise RegistryUnavailable(
        f"{what}: MLflow at {mlflow.get_tracking_uri()} unavailable after {attempts} attempts "
        f"({first_line(last)}); trained models stay in models/ (DVC outputs): rerun "
        "`alignflow stage register` once the server is back"
    )


REFUSED = ("PERMISSION_DENIED", "UNAUTHENTICATED")
"""MLflow error codes of a server that refuses the signed-in user (HTTP 403) or the credentials (HTTP 401)."""


@contextlib.contextmanager
def refused_as_one_line(action: str) -> Iterator[None]:
    """A tracking server that refuses the user or the password is one line naming the user, not a traceback."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in REFUSED and exc.get_http_status_code() not in (401, 403):
            raise
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "(no MLFLOW_TRACKING_USERNAME)")
        if exc.error_code == "UNAUTHENTICATED" or exc.get_http_status_code() == 401:
            why = "the server does not accept the credentials; check MLFLOW_TRACKING_USERNAME / _PASSWORD"
        else:
            why = "permission denied; an admin can grant EDIT on the model, or use the pipeline's account"
        raise AlignflowError(f"{action}: MLflow user {user!r}: {why} ({first_line(exc)})") from None


@contextlib.contextmanager
def registry_lock() -> Iterator[None]:
    """Serialise gate decisions on this machine (the re-read inside keeps remote writers consistent too)."""
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def requirements() -> list[str]:
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def find_version(client, name: str, candidate_key: str) -> ModelVersion | None:
    """The version already registered for this exact candidate, if any (so re-running register is idempotent)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return next((v for v in versions if v.tags.get(CANDIDATE_TAG) == candidate_key), None)


def log_and_register(
    name: str,
    python_model,
    artifacts: dict[str, str],
    model_config: dict[str, Any],
    tags: dict[str, str],
    input_example: Any = None,
) -> ModelVersion:
    """Log a pyfunc model in the active run and register it as a new version of `name`, tags included (one
    request, so a version never exists without its candidate key and lineage). The model ships a copy of the
    alignflow package without the pipeline code (SHIPPED_CODE_EXCLUDES). MLflow runs the model on
    `input_example` once before logging it, and reads the `predict` params' names, types and defaults from it."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="alignflow-code-") as staging:
        package = Path(alignflow.__file__).parent
        code = shutil.copytree(
            package, Path(staging) / package.name, ignore=shutil.ignore_patterns(*SHIPPED_CODE_EXCLUDES)
        )
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts=artifacts,
            model_config=model_config,
            code_paths=[str(code)],
            pip_requirements=requirements(),
            input_example=input_example,
        )
    return mlflow.register_model(info.model_uri, name, tags=tags)


def version_metrics(version) -> dict[str, float]:
    return {key.removeprefix("eval."): float(value) for key, value in version.tags.items() if key.startswith("eval.")}


def alias_holder(client, name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def gate_and_promote(
    client, name: str, version: str, gate: RegisterParams, alias: str | None = None, force_reason: str | None = None
) -> Decision:
    """Apply the gate to `version` against the current alias holder; move the alias if it passes (or is forced)."""
    alias = alias or gate.alias
    with registry_lock():
        candidate = client.get_model_version(name, version)
        holder = alias_holder(client, name, alias)
        if holder is not None and holder.version == candidate.version:
            decision = Decision(True, f"already @{alias}")
        else:
            current = version_metrics(holder) if holder is not None else None
            unlike = differing_parts(from_tags(candidate.tags), from_tags(holder.tags)) if holder is not None else []
            decision = decide_promotion(
                version_metrics(candidate),
                current,
                _with_alias(gate, alias),
                holder.version if holder is not None else None,
                unlike,
            )
        if force_reason is not None and not decision.promote:
            decision = Decision(True, f"forced by {getpass.getuser()}: {force_reason} (gate said: {decision.reason})")
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for key, value in {  # the decision first: a kill before the alias move leaves it to be redone, not lost
            **decision.tags(alias),
            gate_tag(alias, "decided_by"): getpass.getuser(),
            gate_tag(alias, "decided_at"): stamp,
        }.items():
            client.set_model_version_tag(name, version, key, value)
        if decision.promote:
            client.set_registered_model_alias(name, alias, version)
    return decision


def _with_alias(gate: RegisterParams, alias: str) -> RegisterParams:
    return dataclasses.replace(gate, alias=alias)


def list_versions(client, name: str) -> list[dict[str, Any]]:
    """One row per version: aliases, gate decisions and headline eval metrics."""
    model = client.get_registered_model(name)
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for version in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        metrics = version_metrics(version)
        rows.append(
            {
                "version": str(version.version),
                "aliases": ",".join(sorted(aliases.get(str(version.version), []))),
                "method": version.tags.get("lineage.method"),
                "reward": metrics.get("reward_policy_mean"),
                "win_rate": metrics.get("win_rate_policy_vs_sft"),
                "lc_win_rate": metrics.get("lc_win_rate_policy_vs_sft"),
                "kl": metrics.get("kl_policy_sft_mean"),
                "ifeval": metrics.get("ifeval_prompt_strict_policy"),
                "benchmark": _benchmark_cell(version.tags),
                "gate": "; ".join(
                    f"{k.split('.')[1]}={v}"
                    for k, v in sorted(version.tags.items())
                    if k.startswith("gate.") and k.endswith(".decision")
                ),
                "commit": version.tags.get("lineage.git_commit", "")[:10],
            }
        )
    return rows


def _benchmark_cell(tags: dict[str, str]) -> str | None:
    """`alignflow benchmark`'s IFEval prompt-level strict accuracy on a version, with its prompt count."""
    score = tags.get("benchmark.ifeval_prompt_strict")
    return f"{float(score):.3f} ({tags.get('benchmark.ifeval_prompts')})" if score is not None else None
