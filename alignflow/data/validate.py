"""Read one source and validate every record against its contract, failing or skipping bad ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignflow.config import SourceParams
from alignflow.data.records import NORMALISERS, FieldError, show
from alignflow.data.sources import HUB_PREFIX, read_source
from alignflow.errors import DataError


@dataclass
class Validated:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[DataError] = field(default_factory=list)
    locations: list[int | str] = field(default_factory=list)
    """Where each record was read (`12`, `record 12`, `row 12`), in the order of `records`."""


def validate_source(dataset: str, source: SourceParams, on_error: str = "fail") -> Validated:
    """All records of `source` in canonical form. With on_error="skip", bad records are counted, not fatal.

    A source that yields no valid record at all is always an error: an empty stage output would
    only fail later, further from the cause.
    """
    normalise = NORMALISERS[dataset]
    result, first_seen = Validated(), {}
    for raw in read_source(source):
        try:
            if raw.problem:
                raise FieldError(None, raw.problem)
            record = normalise(raw.data)
            first = first_seen.get(record["id"])
            if first is not None:
                raise FieldError("id", f"duplicate id {show(record['id'])} (first at {_spelled(first)})")
        except FieldError as exc:
            error = DataError(source.path, raw.where, exc.field, exc.problem)
            if on_error != "skip":
                raise error from None
            result.rejects.append(error)
            continue
        first_seen[record["id"]] = raw.where
        result.records.append(record)
        result.locations.append(raw.where)
    _require_records(dataset, source, result)
    return result


def check_ids_across_sources(
    validated: dict[str, Validated], sources: dict[str, SourceParams], on_error: str = "fail"
) -> None:
    """Ids are unique across all sources, as reports name records by id alone; skip mode drops the later copy.

    Two datasets read from the same file (say sft and comparisons from one hh-rlhf CSV) may share ids: there the
    same id names the same source record.
    """
    seen: dict[str, tuple[str, int | str]] = {}
    for dataset, result in validated.items():
        source = sources[dataset]
        kept = Validated(rejects=result.rejects)
        for record, where in zip(result.records, result.locations):
            first = seen.get(record["id"])
            if first is not None and not _same_file(sources[first[0]], source):
                other, other_where = first
                error = DataError(
                    source.path,
                    where,
                    "id",
                    f"duplicate id {show(record['id'])}: {other} uses it too "
                    f"({sources[other].path}:{other_where}); ids must be unique across the ingest sources",
                )
                if on_error != "skip":
                    raise error
                kept.rejects.append(error)
                continue
            seen.setdefault(record["id"], (dataset, where))
            kept.records.append(record)
            kept.locations.append(where)
        _require_records(dataset, source, kept)
        validated[dataset] = kept


def _same_file(a: SourceParams, b: SourceParams) -> bool:
    if a.path.startswith(HUB_PREFIX) or b.path.startswith(HUB_PREFIX):
        return (a.path, a.split) == (b.path, b.split)
    return Path(a.path).resolve() == Path(b.path).resolve()


def _spelled(where: int | str) -> str:
    return f"line {where}" if isinstance(where, int) else where


def _require_records(dataset: str, source: SourceParams, result: Validated) -> None:
    if not result.records:
        raise DataError(source.path, None, None, f"no valid {dataset} records ({len(result.rejects)} rejected)")
