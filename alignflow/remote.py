"""The DVC remote: push what a run produced, pull what a checkout needs; one line when the remote is down.

`.dvc/config` ships two remotes: `local` (the default, a folder beside the project: `../alignflow-dvc-remote`)
and `stack` (the S3 bucket of the docker/ stack). `dvc remote default NAME` (or `--local`) picks another.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from alignflow.errors import AlignflowError


class RemoteUnavailable(AlignflowError):
    """A push or pull could not reach the DVC remote (or the remote lacks what was asked for)."""


def default_remote() -> str:
    found = _dvc(["remote", "default"], check=False)
    return found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else ""


def push(targets: Sequence[str] = (), remote: str | None = None) -> str:
    """`dvc push` the outputs in dvc.lock (or `targets`) to `remote` (default remote); returns DVC's summary."""
    return _transfer("push", targets, remote)


def pull(targets: Sequence[str] = (), remote: str | None = None) -> str:
    """`dvc pull` the outputs in dvc.lock (or `targets`) into the workspace; returns DVC's summary."""
    return _transfer("pull", targets, remote)


def _transfer(action: str, targets: Sequence[str], remote: str | None) -> str:
    name = remote or default_remote()
    if not name:
        raise RemoteUnavailable(
            f"dvc {action}: no DVC remote configured; add one with `dvc remote add -d NAME URL` (see .dvc/config)"
        )
    result = _dvc([action, "-r", name, *targets], check=False)
    if result.returncode != 0:
        kept = "the outputs stay in this checkout and its DVC cache; " if action == "push" else ""
        raise RemoteUnavailable(
            f"dvc {action} to remote {name!r} failed ({_dvc_error(result)}); {kept}"
            f"rerun `alignflow {action}` once the remote answers"
        )
    return _last_line(result.stdout) or f"{action}: nothing to transfer"


GC_POLICIES = ("none", "workspace")
"""What a run may delete from the local DVC cache after it pushed: `none` (DVC's default: the cache keeps every
version it ever held and grows with each run) or `workspace` (keep only what the work tree uses now)."""


def collect_garbage(policy: str) -> str:
    """Apply a `GC_POLICIES` policy to the local DVC cache; returns DVC's summary. `workspace` bounds a scheduled
    checkout's cache to one run's outputs. Apply it only after a push: the versions it drops stay on the remote,
    where `alignflow pull` and `alignflow reproduce` fetch them."""
    if policy == "none":
        return "kept everything (policy none)"
    result = _dvc(["gc", "--workspace", "--force"], check=False)
    if result.returncode != 0:
        raise AlignflowError(
            f"dvc gc --workspace failed ({_dvc_error(result)}); the work tree's outputs are untouched, rerun it with "
            "`dvc gc --workspace`"
        )
    return _last_line(result.stdout) or "nothing to remove"


def _dvc(args: list[str], check: bool) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], capture_output=True, text=True, check=check)


def _dvc_error(result: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit code {result.returncode}"])[-1][:300]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
