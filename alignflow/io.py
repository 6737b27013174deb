"""File helpers: JSON/JSONL and all-or-nothing stage outputs (temp dir + rename)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

KILL_POINT_ENV = "ALIGNFLOW_KILL_AT"
"""For crash tests: `replace` SIGKILLs the process right after it moves an old output folder aside, the one moment
at which no output lies at the target path (`recover_output` puts the old one back)."""


@contextlib.contextmanager
def staged_outputs(*targets: Path | str) -> Iterator[list[Path]]:
    """Yield one empty temp path per target; move them into place only if the block succeeds.

    A failing stage therefore leaves its previous outputs (and everyone else's) untouched, and a killed one
    leaves them recoverable: see `recover_output`. A target whose name has a suffix (metrics.json) is a file,
    otherwise a directory.
    """
    paths = [Path(t) for t in targets]
    scratch, temps = [], []
    try:
        for path in paths:
            recover_output(path)
            for stale in path.parent.glob(f".{path.name}.*.tmp"):  # scratch of a killed run
                shutil.rmtree(stale, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch.append(Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)))
            scratch[-1].chmod(0o777 & ~_umask())  # mkdtemp makes 0700; outputs get ordinary permissions
            temps.append(scratch[-1] / path.name if path.suffix else scratch[-1])
        yield temps
        for path, temp in zip(paths, temps):
            _replace(temp, path)
    finally:
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)


def recover_output(path: Path) -> None:
    """Undo a replacement cut between its two renames (old output moved aside, new one not yet in place)."""
    old = _set_aside(path)
    if old.exists() and not path.exists():
        old.rename(path)


def _set_aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(source: Path, target: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"stage did not write {target}")
    if target.is_dir() and not target.is_symlink():
        old = _set_aside(target)
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        if os.environ.get(KILL_POINT_ENV) == "replace":
            os.kill(os.getpid(), signal.SIGKILL)
        source.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file's bytes (`md5`, `sha256`, ...), read in 1 MB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
