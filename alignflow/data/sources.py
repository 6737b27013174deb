"""Read a dataset source (JSONL, JSON, CSV, Parquet or a hub dataset) as located raw records.

Every record comes with its location (its first line in JSONL and CSV, `record 12` in JSON and hub datasets,
`row 12` in Parquet, all 1-based) so that a contract violation can be reported as `file:12: field: problem`.
Whatever cannot be read at all (bad bytes, broken syntax, an unreadable Parquet file) is one such line too.

Text files are UTF-8, and may be gzipped (`test.jsonl.gz`, as hh-rlhf is published). A UTF-8 byte-order mark
at the start is accepted and dropped; a UTF-16/32 one is an error that says to re-save the file as UTF-8. CRLF
line endings are accepted (in CSV, also inside quoted fields). NUL bytes are an error naming their line and column.
`datasets` is imported only when a hub dataset is read, so that local sources do not pay for it.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignflow.config import SourceParams
from alignflow.errors import DataError, first_line

HUB_PREFIX = "hub:"
TOO_DEEP = "nested too deeply to parse (records are objects of strings, numbers and short lists)"
UNICODE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


@dataclass(frozen=True)
class RawRecord:
    location: int
    """1-based line number (JSONL/CSV: the record's first line) or record / row number (JSON, hub / Parquet)."""
    data: dict[str, Any]
    problem: str | None = None
    """Set when the record could not be read at all (invalid JSON, bad bytes): skippable, never mapped."""
    unit: str = "line"
    """What `location` counts: line, record or row."""

    @property
    def where(self) -> int | str:
        """The location as printed after `file:`: a bare number for lines, `record 3` / `row 3` otherwise."""
        return self.location if self.unit == "line" else f"{self.unit} {self.location}"


def read_source(source: SourceParams) -> Iterator[RawRecord]:
    """Yield the source's records with field mapping applied, from `source.skip` on, up to `source.limit`."""
    records = _read_hub(source) if source.path.startswith(HUB_PREFIX) else _read_file(Path(source.path))
    end = None if source.limit is None else source.skip + source.limit
    for record in itertools.islice(records, source.skip, end):
        if record.problem:
            yield record
            continue
        data = map_fields(record.data, source)
        if (source.generate_ids or source.preset) and "id" not in data:
            data["id"] = generated_id(source, record.location)
        yield RawRecord(record.location, data, unit=record.unit)


def generated_id(source: SourceParams, location: int) -> str:
    """`<file stem>-<location>`; a hub dataset's id also names the split, as two splits share locations."""
    name = Path(source.path.removesuffix(".gz")).stem
    return f"{name}-{source.split}-{location}" if source.path.startswith(HUB_PREFIX) else f"{name}-{location}"


def map_fields(row: dict[str, Any], source: SourceParams) -> dict[str, Any]:
    """Rename source columns to contract fields (or, with a preset, to the preset's columns); a `transcript`
    column becomes `messages`."""
    if not source.fields:
        return row
    mapped = {k: v for k, v in row.items() if k not in source.fields.values()}
    for target, column in source.fields.items():
        if column not in row:
            continue  # the validator reports the missing contract field
        if source.preset:
            mapped[target] = row[column]
        elif target == "transcript":
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
    """A transcript -> (the turns before its last assistant turn, that turn's text), as in hh-rlhf; the turns
    stay turns, so a multi-turn context is rendered as a conversation, never as inline `Assistant:` text."""
    if not isinstance(text, str) or assistant not in text:
        return text, text
    head, _, reply = text.rpartition(assistant)
    return parse_transcript(head, human, assistant) or head.strip(), reply.strip()


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(path, None, None, f"not a readable gzip file, truncated? ({first_line(exc)})") from None
    if not raw.strip():
        raise DataError(path, None, None, "file is empty")
    for bom, encoding in UNICODE_BOMS:
        if raw.startswith(bom):
            raise DataError(
                path, None, None, f"file is {encoding} (it starts with a {encoding} byte-order mark); save it as UTF-8"
            )
    return raw


def _decode(path: Path) -> str:
    """The whole file as text: UTF-8 (a leading BOM dropped), no NUL bytes."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            path, line, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DataError(
            path,
            line,
            None,
            f"NUL byte at column {nul - text.rfind(chr(10), 0, nul)} (a binary file, or text saved as UTF-16?)",
        )
    return text


def _read_file(path: Path) -> Iterator[RawRecord]:
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    if suffix == ".parquet":
        rows = _read_parquet(path)
        yield from (RawRecord(i, row, unit="row") for i, row in enumerate(rows, start=1))
    elif suffix == ".csv":
        yield from _read_csv(path)
    elif suffix == ".json":
        try:
            rows = json.loads(_decode(path))
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise DataError(path, None, None, f"JSON {TOO_DEEP}") from None
        if not isinstance(rows, list):
            raise DataError(path, None, None, f"expected a JSON list of records, found {_json_kind(rows)}")
        if not rows:
            raise DataError(path, None, None, "file has no records (an empty list)")
        for i, row in enumerate(rows, start=1):
            if isinstance(row, dict):
                yield RawRecord(i, row, unit="record")
            else:
                yield RawRecord(i, {}, f"expected a JSON object, found {_json_kind(row)}", unit="record")
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    else:
        raise DataError(
            path,
            None,
            None,
            f"unsupported format {suffix or '(none)'}; use .jsonl, .json, .csv (each may be gzipped) or .parquet",
        )


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    """Line by line, so one bad line is one (skippable) bad record."""
    raw = _read_bytes(path)
    for number, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        nul = line.find(b"\x00")
        if nul >= 0:
            yield RawRecord(number, {}, f"NUL byte at column {nul + 1} (a binary file, or text saved as UTF-16?)")
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield RawRecord(number, {}, f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})")
            continue
        except json.JSONDecodeError as exc:
            yield RawRecord(number, {}, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            yield RawRecord(number, {}, f"JSON {TOO_DEEP}")
            continue
        if not isinstance(row, dict):
            yield RawRecord(number, {}, f"expected a JSON object, found {_json_kind(row)}")
            continue
        yield RawRecord(number, row)


def _read_csv(path: Path) -> Iterator[RawRecord]:
    """Records by their first line. A quote left open is an error, never a field that swallows the rest of the file."""
    text = _decode(path).replace("\r\n", "\n")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start, count = 1, 0
    try:
        header = next(reader, [])
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise DataError(path, 1, None, f"column {duplicated[0]!r} appears twice in the header")
        start = reader.line_num + 1
        for cells in reader:
            location, start = start, reader.line_num + 1
            if not cells:
                continue
            count += 1
            if len(cells) != len(header):
                hint = "; quote a field that contains a comma" if len(cells) > len(header) else ""
                yield RawRecord(
                    location, {}, f"expected {len(header)} fields ({', '.join(header)}), found {len(cells)}{hint}"
                )
                continue
            row, problem = {}, None
            for name, cell in zip(header, cells):
                row[name], problem = _csv_value(cell)
                if problem:
                    problem = f"column {name!r}: {problem}"
                    break
            yield RawRecord(location, {} if problem else row, problem)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DataError(
                path,
                start,
                None,
                "unterminated quote: a quoted field opened in this record never "
                "closes (the rest of the file would become one field)",
            ) from None
        raise DataError(path, start, None, f'invalid CSV ({exc}); write a quote inside a quoted field as ""') from None
    if not count:
        raise DataError(path, None, None, "file has no records (only a header line)")


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    """All rows; a file pyarrow cannot read (corrupt, truncated, not Parquet) is one line, not a traceback."""
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, None, None, "file is empty")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = first_line(exc).replace(f"Could not open Parquet input source '{path}': ", "")
        raise DataError(path, None, None, f"not a readable Parquet file, corrupt or truncated? ({reason})") from None
    if not rows:
        raise DataError(path, None, None, "file has no records")
    return rows


def _json_kind(value: Any) -> str:
    """JSON's name for a parsed value's type (a list is an `array`, a dict an `object`)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _csv_value(value: str) -> tuple[Any, str | None]:
    """(value, problem): cells holding JSON lists/objects (e.g. messages) are decoded; others stay strings."""
    if value and value[:1] in "[{":
        try:
            return json.loads(value), None
        except json.JSONDecodeError:
            return value, None
        except RecursionError:
            return None, f"JSON {TOO_DEEP}"
    return value, None


def _read_hub(source: SourceParams) -> Iterator[RawRecord]:
    dataset_id = source.path[len(HUB_PREFIX) :]
    try:
        import datasets

        dataset = datasets.load_dataset(dataset_id, split=source.split)
    except Exception as exc:  # network, auth, missing split: all end the same way for the user
        raise DataError(
            source.path,
            None,
            None,
            f"cannot load hub dataset {dataset_id!r} split {source.split!r} ({first_line(exc)}); "
            "check the id and network access, or point `path` at a local file",
        ) from None
    yield from (RawRecord(i, dict(row)) for i, row in enumerate(dataset, start=1))
