"""Errors meant for people: each names where the problem is and what was expected."""

from __future__ import annotations

import sys


class AlignflowError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ConfigError(AlignflowError):
    """A params.yaml / profile / --set problem."""


class DataError(AlignflowError):
    """A record that breaks its data contract, reported as `file:line: field: problem`."""

    def __init__(self, file: str, line: int | str | None, field: str | None, problem: str):
        self.file, self.line, self.field, self.problem = str(file), line, field, problem
        where = self.file if line is None else f"{self.file}:{line}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class StageInputError(AlignflowError):
    """An input a stage needs is missing: the message names the stage that produces it."""


ERROR_PREFIX = "error: "
"""How a one-line error starts on stderr; the Prefect task reads it back to name a failed stage's cause."""


def report(exc: object) -> None:
    """Print an error for people as the one line the CLI and the stages end with."""
    print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)


def first_line(exc: object) -> str:
    """The first line of an exception's message (library errors can span pages), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
