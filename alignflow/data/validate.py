"""Read one source and validate every record against its contract, failing or skipping bad ones."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignflow.config import SourceParams
from alignflow.data.records import DEFAULT_MAX_PAIRS, NORMALISERS, FieldError, show
from alignflow.data.sources import HUB_PREFIX, read_source
from alignflow.errors import DataError

Items = Iterable[tuple[int | str, dict[str, Any] | FieldError]]
"""(where, a record in an input form of the contract, or why that row cannot become one)."""


@dataclass
class Validated:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[DataError] = field(default_factory=list)
    locations: list[int | str] = field(default_factory=list)
    """Where each record was read (`12`, `record 12`, `row 12`), in the order of `records`."""


def validate_source(
    dataset: str,
    source: SourceParams,
    on_error: str = "fail",
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    items: Items | None = None,
    source_field: Callable[[str | None], str | None] = lambda name: name,
) -> Validated:
    """All records of `source` (or of `items` read from it) in canonical form. With on_error="skip", bad records
    are counted, not fatal. Comparison groups of scored responses keep at most `max_pairs` pairs (seeded by `seed`
    and the record id). `source_field` spells a contract field as the source names it, for the error.

    A source that yields no valid record at all is always an error: an empty stage output would
    only fail later, further from the cause.
    """
    if items is None and source.preset:
        raise ValueError("a source with a preset is read through alignflow.data.presets.validate_mapped")
    normalise = NORMALISERS[dataset]
    if dataset == "comparisons":
        normalise = functools.partial(normalise, max_pairs=max_pairs, seed=seed)
    result, first_seen = Validated(), {}
    for where, data in read_items(source) if items is None else items:
        try:
            if isinstance(data, FieldError):
                raise data
            record = normalise(data)
            first = first_seen.get(record["id"])
            if first is not None:
                raise FieldError("id", f"duplicate id {show(record['id'])} (first at {_spelled(first)})")
        except FieldError as exc:
            error = DataError(source.path, where, source_field(exc.field), exc.problem)
            if on_error != "skip":
                raise error from None
            result.rejects.append(error)
            continue
        first_seen[record["id"]] = where
        result.records.append(record)
        result.locations.append(where)
    _require_records(dataset, source, result)
    return result


def read_items(source: SourceParams) -> Iterator[tuple[int | str, dict[str, Any] | FieldError]]:
    """The source's rows as they are (with `fields` renames), each with where it was read."""
    for raw in read_source(source):
        yield raw.where, FieldError(None, raw.problem) if raw.problem else raw.data


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
