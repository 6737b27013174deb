"""Read one source and validate every record against its contract, failing or skipping bad ones."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alignflow.config import SourceParams
from alignflow.data.records import NORMALISERS, FieldError
from alignflow.data.sources import read_source
from alignflow.errors import DataError


@dataclass
class Validated:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[DataError] = field(default_factory=list)


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
            if record["id"] in first_seen:
                raise FieldError("id", f"duplicate id {record['id']!r} (first at line {first_seen[record['id']]})")
        except FieldError as exc:
            error = DataError(source.path, raw.location, exc.field, exc.problem)
            if on_error != "skip":
                raise error from None
            result.rejects.append(error)
            continue
        first_seen[record["id"]] = raw.location
        result.records.append(record)
    if not result.records:
        raise DataError(source.path, None, None, f"no valid {dataset} records ({len(result.rejects)} rejected)")
    return result
