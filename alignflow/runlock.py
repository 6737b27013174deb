"""One pipeline run per checkout: `alignflow run` and `alignflow stage` hold `.alignflow.lock` while they work.

The lock file is created atomically (O_CREAT | O_EXCL) in the project root and holds {"pid", "host", "started"}.
A second run refuses at once with one line naming the holder. A lock whose pid no longer runs on this host (a run
that was killed) is stale: the next run takes it over. A lock written on another host (a shared file system) is
never guessed stale; the message says to delete the file once that run has stopped. Acquiring and releasing
happen under a short flock on `.alignflow.lock.guard`, so two runs finding the same stale lock cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from alignflow.errors import AlignflowError

LOCK_FILE = Path(".alignflow.lock")


class RunLocked(AlignflowError):
    """Another run holds this checkout's lock."""


@dataclass(frozen=True)
class Lock:
    path: Path
    holder: dict[str, Any]
    """What this process wrote: {"pid", "host", "started"}."""
    took_over: dict[str, Any] | None = None
    """The stale holder replaced, if any ({} when the old lock file was unreadable)."""


@contextlib.contextmanager
def run_lock(path: Path = LOCK_FILE) -> Iterator[Lock]:
    """Hold the checkout's run lock for the block; released however the block ends (an exception included).
    Re-entrant: inside a block of this process (`alignflow run` around the flow), it holds on without a second
    acquire, and the outer block releases."""
    held = read_holder(path)
    if held and held["pid"] == os.getpid() and not is_stale(held):
        yield Lock(path, held)
        return
    lock = acquire(path)
    try:
        yield lock
    finally:
        release(lock)


def acquire(path: Path = LOCK_FILE) -> Lock:
    """Take the lock, or raise RunLocked naming the live holder."""
    mine = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    took_over = None
    with _guard(path):
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                current = read_holder(path)
                if current and not is_stale(current):
                    raise RunLocked(refusal(path, current)) from None
                took_over = current or {}  # unreadable: its writer died before finishing it (writes hold the guard)
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(mine, handle)
                handle.flush()
                os.fsync(handle.fileno())
            return Lock(path, mine, took_over)


def release(lock: Lock) -> None:
    """Remove the lock file if it is still ours."""
    with _guard(lock.path):
        if read_holder(lock.path) == lock.holder:
            lock.path.unlink(missing_ok=True)


def process_holder(process: psutil.Process) -> dict[str, Any]:
    """A running process described as a lock holder ({"pid", "host", "started"}), so that `is_stale` can later
    tell whether it is gone (other records than the lock file use this, e.g. MLflow runs' owners)."""
    started = dt.datetime.fromtimestamp(int(process.create_time())).astimezone()
    return {"pid": process.pid, "host": socket.gethostname(), "started": started.isoformat(timespec="seconds")}


def read_holder(path: Path) -> dict[str, Any] | None:
    """The lock's contents, or None if the file is missing or not a lock this module wrote."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int) or not holder.get("host"):
        return None
    return holder


def is_stale(holder: dict[str, Any]) -> bool:
    """True only when the holder ran on this host and its process is gone (or its pid now names a newer process)."""
    if holder["host"] != socket.gethostname():
        return False
    return not _running(holder["pid"], holder.get("started"))


def refusal(path: Path, holder: dict[str, Any]) -> str:
    what = f"pid {holder['pid']} on host {holder['host']}, started {holder.get('started', '?')}"
    if holder["host"] != socket.gethostname():
        return (
            f"{path}: another alignflow run holds this checkout ({what}); if that run has stopped, "
            f"delete {path} and retry"
        )
    return f"{path}: another alignflow run holds this checkout ({what}); wait for it to finish or stop it"


def _running(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # a pid reused by a process that started after the lock was written is not the holder
        return not (started and process.create_time() > dt.datetime.fromisoformat(started).timestamp() + 1)
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, ValueError):
        return True


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    """Serialise acquire and release across processes on this host; the kernel drops it if a process dies."""
    with path.with_name(path.name + ".guard").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
