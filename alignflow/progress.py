"""A line per unit of work a stage finishes, so that whoever reads the stage's output (a person, the crash tests)
can tell how far it got. Only the output changes: no result depends on it."""

from __future__ import annotations

PREFIX = "progress: "


def progress(what: str) -> None:
    print(f"{PREFIX}{what}", flush=True)
