"""Read a dataset source (JSONL, JSON, CSV, Parquet or a hub dataset) as located raw records.

Every record comes with its location (`line 12` for text files, `record 12` otherwise) so that a
contract violation can be reported as `file:12: field: problem`.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from alignflow.config import SourceParams
from alignflow.errors import DataError, first_line

HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class RawRecord:
    location: int
    """1-based line number (JSONL/CSV) or record number (JSON/Parquet/hub)."""
    data: dict[str, Any]
    problem: str | None = None
    """Set when the record could not be read at all (invalid JSON, bad bytes): skippable, never mapped."""


def read_source(source: SourceParams) -> Iterator[RawRecord]:
    """Yield the source's records with field mapping applied, up to `source.limit`."""
    records = _read_hub(source) if source.path.startswith(HUB_PREFIX) else _read_file(Path(source.path))
    for count, record in enumerate(records):
        if source.limit is not None and count >= source.limit:
            return
        if record.problem:
            yield record
            continue
        data = map_fields(record.data, source)
        if source.generate_ids and "id" not in data:
            data["id"] = f"{Path(source.path).stem}-{record.location}"
        yield RawRecord(record.location, data)


def map_fields(row: dict[str, Any], source: SourceParams) -> dict[str, Any]:
    """Rename source columns to contract fields; a `transcript` column becomes `messages`."""
    if not source.fields:
        return row
    mapped = {k: v for k, v in row.items() if k not in source.fields.values()}
    for target, column in source.fields.items():
        if column not in row:
            continue  # the validator reports the missing contract field
        if target == "transcript":
            mapped["messages"] = parse_transcript(row[column], source.human_marker, source.assistant_marker)
        elif target in ("chosen_transcript", "rejected_transcript"):
            prompt, reply = split_last_reply(row[column], source.human_marker, source.assistant_marker)
            mapped.setdefault("prompt", prompt)
            mapped[target.removesuffix("_transcript")] = reply
        else:
            mapped[target] = row[column]
    return mapped


def parse_transcript(text: Any, human: str, assistant: str) -> Any:
    """`### Human: hi ### Assistant: hello` -> messages; non-strings pass through for the validator."""
    if not isinstance(text, str):
        return text
    pattern = re.compile(f"({re.escape(human)}|{re.escape(assistant)})")
    parts = pattern.split(text)
    messages = []
    for marker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if marker == human else "assistant", "content": content.strip()})
    return messages


def split_last_reply(text: Any, human: str, assistant: str) -> tuple[Any, Any]:
    """A transcript -> (everything before the last assistant turn, that turn), as in hh-rlhf."""
    if not isinstance(text, str) or assistant not in text:
        return text, text
    head, _, reply = text.rpartition(assistant)
    return head.replace(human, "").strip(), reply.strip()


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(path, None, None, "file is empty")
    return raw


def _decode(path: Path) -> str:
    raw = _read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(path, line, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def _read_file(path: Path) -> Iterator[RawRecord]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        if not path.is_file():
            raise DataError(path, None, None, "file not found")
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        if not rows:
            raise DataError(path, None, None, "file has no records")
        yield from (RawRecord(i, row) for i, row in enumerate(rows, start=1))
    elif suffix == ".csv":
        text = _decode(path)
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            yield RawRecord(reader.line_num, {k: _csv_value(v) for k, v in row.items()})
    elif suffix == ".json":
        try:
            rows = json.loads(_decode(path))
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, None, f"invalid JSON ({exc.msg})") from None
        if not isinstance(rows, list):
            raise DataError(path, None, None, "expected a JSON list of records")
        yield from (RawRecord(i, _as_object(row, path, i)) for i, row in enumerate(rows, start=1))
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    else:
        raise DataError(path, None, None, f"unsupported format {suffix or '(none)'}; use .jsonl, .json, .csv or .parquet")


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    """Line by line, so one bad line is one (skippable) bad record."""
    raw = _read_bytes(path)
    for number, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield RawRecord(number, {}, f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})")
            continue
        except json.JSONDecodeError as exc:
            yield RawRecord(number, {}, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            yield RawRecord(number, {}, f"expected a JSON object, found {type(row).__name__}")
            continue
        yield RawRecord(number, row)


def _as_object(row: Any, path: Path, number: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DataError(path, number, None, f"expected a JSON object, found {type(row).__name__}")
    return row


def _csv_value(value: str | None) -> Any:
    """CSV cells holding JSON lists/objects (e.g. messages) are decoded; others stay strings."""
    if value and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _read_hub(source: SourceParams) -> Iterator[RawRecord]:
    dataset_id = source.path[len(HUB_PREFIX):]
    try:
        import datasets

        dataset = datasets.load_dataset(dataset_id, split=source.split)
    except Exception as exc:  # network, auth, missing split: all end the same way for the user
        raise DataError(source.path, None, None,
                        f"cannot load hub dataset {dataset_id!r} split {source.split!r} ({first_line(exc)}); "
                        "check the id and network access, or point `path` at a local file") from None
    yield from (RawRecord(i, dict(row)) for i, row in enumerate(dataset, start=1))
