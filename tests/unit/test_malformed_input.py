"""Malformed inputs, one table row each: through the ingest stage's CLI, every one ends in one line
`error: file:line: field: problem` (or the closest location the format has), exit status 1, and the previous
outputs untouched. A few rows also run as `python -m alignflow.stages.ingest` in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alignflow.config import SourceParams, load_params
from alignflow.data.validate import Validated, check_ids_across_sources, validate_source
from alignflow.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
MAX_ERROR_LENGTH = 400
DEEP = 100_000  # far past any parser's recursion limit

SFT = {"id": "sft-1", "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
CMP = {
    "id": "cmp-1",
    "prompt": "Tea or coffee?",
    "responses": [{"text": "Either is fine.", "score": 8}, {"text": "Go away.", "score": 2}],
}
PROMPT = {"id": "p-1", "prompt": "How do I keep basil fresh?"}
EVAL = {"id": "e-1", "prompt": "Why is the sky blue?"}
GOOD = {"sft": SFT, "comparisons": CMP, "prompts": PROMPT, "eval_prompts": EVAL}
PREVIOUS_OUTPUTS = {
    "data/raw/sft.jsonl": "previous\n",
    "models/base/config.json": "{}\n",
    "models/encoder/config.json": "{}\n",
    "metrics/ingest.json": '{"previous": true}\n',
}


def jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def parquet(**columns) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def good_parquet() -> bytes:
    return parquet(id=[f"p-{i}" for i in range(50)], prompt=[f"question number {i}?" for i in range(50)])


def corrupt_middle(data: bytes) -> bytes:
    """Overwrite the data pages but keep the footer's magic bytes, so only the thrift metadata is broken."""
    return data[:4] + b"\xab" * (len(data) // 2) + data[4 + len(data) // 2 :]


def params_text(**sources: str) -> str:
    paths = {name: f"in/{name}.jsonl" for name in GOOD} | sources
    lines = ["ingest:", "  model: tiny"] + [f"  {name}: {{path: {path}}}" for name, path in paths.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    id: str
    dataset: str
    """Which source the file replaces, or `params` for params.yaml itself."""
    name: str
    content: bytes | Callable[[], bytes]
    error: str
    """Regex the line after `error: ` must match from its start (the file's name is escaped for you)."""

    def bytes(self) -> bytes:
        return self.content() if callable(self.content) else self.content

    def pattern(self) -> str:
        where = "params.yaml" if self.dataset == "params" else f"in/{self.name}"
        return re.escape(where) + self.error


def jsonl_case(id, dataset, content, error):
    return Case(id, dataset, f"{id}.jsonl", content, error)


def params_case(id, text, error):
    return Case(id, "params", "params.yaml", (params_text() + text).encode(), error)


CASES = [
    # JSONL
    jsonl_case(
        "jsonl_invalid_json",
        "sft",
        jsonl(SFT, '{"id": "b", "messages": ['),
        r":2: invalid JSON: Expecting value \(column 26\)$",
    ),
    jsonl_case(
        "jsonl_truncated_last_line",
        "prompts",
        jsonl(PROMPT)[:-1] + b'\n{"id": "p-2", "pro',
        r":2: invalid JSON: Unterminated string starting at \(column 15\)$",
    ),
    jsonl_case(
        "jsonl_not_utf8",
        "prompts",
        jsonl(PROMPT) + b'{"id": "p-2", "prompt": "caf\xe9"}\n',
        r":2: not valid UTF-8 \(byte 0xe9 at column 29\)",
    ),
    jsonl_case(
        "jsonl_utf16",
        "prompts",
        jsonl(PROMPT).decode().encode("utf-16"),
        r": file is UTF-16 \(it starts with a UTF-16 byte-order mark\); save it as UTF-8$",
    ),
    jsonl_case(
        "jsonl_nul_byte",
        "prompts",
        jsonl(PROMPT) + b'{"id": "p-2",\x00 "prompt": "q"}\n',
        r":2: NUL byte at column 14 ",
    ),
    jsonl_case(
        "prompt_unknown_constraint",
        "prompts",
        jsonl(PROMPT, {"id": "p-2", "prompt": "q", "constraints": [{"instruction_id": "punctuation:no_commas"}]}),
        r":2: constraints\[0\].instruction_id: unknown instruction id 'punctuation:no_commas' \(25 known\)$",
    ),
    jsonl_case(
        "prompt_constraint_kwargs_misfit",
        "prompts",
        jsonl(
            {
                "id": "p-1",
                "prompt": "q",
                "constraints": [
                    {"instruction_id": "punctuation:no_comma"},
                    {"instruction_id": "length_constraints:number_words", "kwargs": {"num_word": 50}},
                ],
            }
        ),
        r":1: constraints\[1\].kwargs: does not fit checker 'length_constraints:number_words': ",
    ),
    jsonl_case(
        "prompt_ground_truth_not_an_answer",
        "prompts",
        jsonl({"id": "p-1", "prompt": "q", "ground_truth": {"answer": 4}}),
        r":1: ground_truth: expected an answer or a list of answers \(text or numbers\), found ",
    ),
    jsonl_case(
        "jsonl_escaped_nul_in_text",
        "prompts",
        jsonl({"id": "p-1", "prompt": "a\u0000b"}),
        r":1: prompt: contains a NUL character \(at position 1\)$",
    ),
    jsonl_case(
        "jsonl_unpaired_surrogate_in_a_reply",
        "sft",
        jsonl(SFT) + b'{"id": "s-2", "messages": [{"role": "user", "content": "Hi"}, '
        b'{"role": "assistant", "content": "ok \\ud83d then"}]}\n',
        r":2: messages\[1\]\.content: contains an unpaired surrogate '\\ud83d' at position 3, which cannot be "
        r"encoded as UTF-8",
    ),
    jsonl_case(
        "jsonl_unpaired_surrogate_in_an_id",
        "prompts",
        jsonl(PROMPT) + b'{"id": "p-\\udc00", "prompt": "q"}\n',
        r":2: id: contains an unpaired surrogate '\\udc00' at position 2",
    ),
    jsonl_case(
        "jsonl_5mb_line",
        "prompts",
        lambda: jsonl({"id": {"blob": "x" * 5_000_000}, "prompt": "q"}),
        r":1: id: expected a non-empty string or integer, found \{'blob': 'xxx+\.\.\. \(5,000,012 characters\)$",
    ),
    jsonl_case(
        "jsonl_deeply_nested",
        "prompts",
        lambda: b'{"id": "p-1", "prompt": ' + b"[" * DEEP + b"]" * DEEP + b"}\n",
        r":1: JSON nested too deeply to parse",
    ),
    jsonl_case(
        "jsonl_score_as_string",
        "comparisons",
        jsonl({**CMP, "responses": [{"text": "a", "score": "8"}, {"text": "b", "score": 2}]}),
        r":1: responses\[0\]\.score: expected a number, found '8' \(a string: write the number without quotes",
    ),
    jsonl_case(
        "jsonl_score_gap_as_string",
        "comparisons",
        jsonl({"id": "c", "prompt": "q", "pairs": [{"chosen": "a", "rejected": "b", "score_gap": "2"}]}),
        r":1: pairs\[0\]\.score_gap: expected a positive number or null, found '2' \(a string",
    ),
    jsonl_case(
        "jsonl_array_not_object", "prompts", jsonl(PROMPT, '["p-2", "q"]'), r":2: expected a JSON object, found array$"
    ),
    jsonl_case(
        "jsonl_null_text",
        "prompts",
        jsonl({"id": "p-1", "prompt": None}),
        r":1: prompt: expected a string, found null$",
    ),
    jsonl_case(
        "jsonl_boolean_id",
        "prompts",
        jsonl({"id": True, "prompt": "q"}),
        r":1: id: expected a non-empty string or integer, found True$",
    ),
    jsonl_case(
        "jsonl_duplicate_id_across_files",
        "eval_prompts",
        jsonl(EVAL, {"id": "p-1", "prompt": "Another?"}),
        r":2: id: duplicate id 'p-1': prompts uses it too \(in/prompts\.jsonl:1\); ids must be unique",
    ),
    # JSON
    Case(
        "json_invalid",
        "prompts",
        "bad.json",
        b'[\n{"id": "p-1", "prompt": "q"},\n{"id": }\n]\n',
        r":3: invalid JSON: Expecting value \(column 8\)$",
    ),
    Case(
        "json_truncated",
        "prompts",
        "cut.json",
        json.dumps([PROMPT, EVAL], indent=1).encode()[:-20],
        r":8: invalid JSON: ",
    ),
    Case(
        "json_not_a_list",
        "prompts",
        "obj.json",
        json.dumps(PROMPT).encode(),
        r": expected a JSON list of records, found object$",
    ),
    Case(
        "json_element_not_object",
        "prompts",
        "mixed.json",
        json.dumps([PROMPT, "Why?"]).encode(),
        r":record 2: expected a JSON object, found string$",
    ),
    Case(
        "json_missing_field",
        "prompts",
        "missing.json",
        json.dumps([PROMPT, {"id": "p-2"}]).encode(),
        r":record 2: prompt: missing$",
    ),
    Case(
        "json_deeply_nested",
        "prompts",
        "deep.json",
        lambda: b"[" * DEEP + b"]" * DEEP,
        r": JSON nested too deeply to parse",
    ),
    Case(
        "json_nul_byte",
        "prompts",
        "nul.json",
        b'[\n{"id": "p-1",\x00 "prompt": "q"}\n]\n',
        r":2: NUL byte at column 14 ",
    ),
    Case(
        "json_score_as_string",
        "comparisons",
        "scores.json",
        json.dumps([{**CMP, "responses": [{"text": "a", "score": 9}, {"text": "b", "score": "7"}]}]).encode(),
        r":record 1: responses\[1\]\.score: expected a number, found '7' \(a string",
    ),
    Case(
        "json_duplicate_id",
        "prompts",
        "dup.json",
        json.dumps([PROMPT, PROMPT]).encode(),
        r":record 2: id: duplicate id 'p-1' \(first at record 1\)$",
    ),
    Case("json_empty_list", "prompts", "empty.json", b"[]\n", r": file has no records \(an empty list\)$"),
    # CSV
    Case(
        "csv_unterminated_quote",
        "prompts",
        "open.csv",
        b'id,prompt\np-1,"What is\np-2,Why\np-3,How\n',
        r":2: unterminated quote: a quoted field opened in this record never closes",
    ),
    Case(
        "csv_text_after_closing_quote",
        "prompts",
        "stray.csv",
        b'id,prompt\np-1,ok\np-2,"Say "hi" now"\n',
        r":3: invalid CSV \(',' expected after '\"'\)",
    ),
    Case(
        "csv_too_many_fields",
        "prompts",
        "commas.csv",
        b"id,prompt\np-1,Hello, world\n",
        r":2: expected 2 fields \(id, prompt\), found 3; quote a field that contains a comma$",
    ),
    Case(
        "csv_too_few_fields",
        "prompts",
        "short.csv",
        b"id,prompt\np-1,q\np-2\n",
        r":3: expected 2 fields \(id, prompt\), found 1$",
    ),
    Case(
        "csv_duplicate_header",
        "prompts",
        "header.csv",
        b"id,prompt,prompt\np-1,a,b\n",
        r":1: column 'prompt' appears twice in the header$",
    ),
    Case(
        "csv_header_only",
        "prompts",
        "header_only.csv",
        b"id,prompt\n",
        r": file has no records \(only a header line\)$",
    ),
    Case("csv_nul_byte", "prompts", "nul.csv", b"id,prompt\np-1,q\np-2,a\x00b\n", r":3: NUL byte at column 6 "),
    Case(
        "csv_not_utf8",
        "prompts",
        "latin1.csv",
        "id,prompt\np-1,café\n".encode("latin-1"),
        r":2: not valid UTF-8 \(byte 0xe9 at offset 17\)$",
    ),
    Case(
        "csv_deeply_nested_json_cell",
        "sft",
        "deep.csv",
        lambda: b'id,messages\nsft-1,"' + b"[" * DEEP + b'"\n',
        r":2: column 'messages': JSON nested too deeply to parse",
    ),
    Case(
        "csv_empty_id",
        "prompts",
        "empty_id.csv",
        b"id,prompt\n,q\n",
        r":2: id: expected a non-empty string or integer, found ''$",
    ),
    Case(
        "csv_multiline_record_names_its_first_line",
        "prompts",
        "multiline.csv",
        b'id,prompt\np-1,q\n"p-2\nsecond line",  \n',
        r":3: prompt: empty$",
    ),
    # Parquet
    Case(
        "parquet_not_parquet",
        "prompts",
        "junk.parquet",
        b"id,prompt\np-1,q\n",
        r": not a readable Parquet file, corrupt or truncated\? \(Parquet magic bytes not found in footer",
    ),
    Case(
        "parquet_truncated",
        "prompts",
        "truncated.parquet",
        lambda: good_parquet()[:-40],
        r": not a readable Parquet file, corrupt or truncated\? \(",
    ),
    Case(
        "parquet_corrupt_metadata",
        "prompts",
        "corrupt.parquet",
        lambda: corrupt_middle(good_parquet()),
        r": not a readable Parquet file, corrupt or truncated\? \(",
    ),
    Case("parquet_empty_file", "prompts", "zero.parquet", b"", r": file is empty$"),
    Case(
        "parquet_no_rows",
        "prompts",
        "no_rows.parquet",
        lambda: parquet(id=pa.array([], pa.string()), prompt=pa.array([], pa.string())),
        r": file has no records$",
    ),
    Case(
        "parquet_int_text_column",
        "prompts",
        "ints.parquet",
        lambda: parquet(id=["p-1"], prompt=[42]),
        r":row 1: prompt: expected a string, found int$",
    ),
    Case(
        "parquet_string_score_column",
        "comparisons",
        "scores.parquet",
        lambda: parquet(
            id=["c-1"], prompt=["q"], responses=[[{"text": "a", "score": "8"}, {"text": "b", "score": "2"}]]
        ),
        r":row 1: responses\[0\]\.score: expected a number, found '8' \(a string",
    ),
    Case(
        "parquet_null_text",
        "prompts",
        "nulls.parquet",
        lambda: parquet(id=["p-1", "p-2"], prompt=["q", None]),
        r":row 2: prompt: expected a string, found null$",
    ),
    Case(
        "parquet_float_id",
        "prompts",
        "float_ids.parquet",
        lambda: parquet(id=[1.5], prompt=["q"]),
        r":row 1: id: expected a non-empty string or integer, found 1\.5$",
    ),
    Case(
        "parquet_duplicate_id",
        "prompts",
        "dup.parquet",
        lambda: parquet(id=["p-1", "p-1"], prompt=["a", "b"]),
        r":row 2: id: duplicate id 'p-1' \(first at row 1\)$",
    ),
    # params.yaml
    params_case("params_invalid_yaml", "dedup: {threshold: 0.9\n", r":\d+: invalid YAML \("),
    params_case("params_tab_indentation", "dedup:\n\tthreshold: 0.9\n", r":8: invalid YAML \("),
    params_case("params_number_as_string", 'ppo:\n  updates: "12"\n', r": ppo\.updates: expected int, found '12'$"),
    params_case(
        "params_unknown_method",
        "align:\n  method: dpx\n",
        r": align\.method: expected one of 'ppo', 'dpo', 'ipo', 'kto', 'simpo', found 'dpx'$",
    ),
    params_case(
        "params_renamed_key",
        "sft:\n  method: full\n",
        r": sft\.method: renamed to sft\.tuning \(same values\)$",
    ),
    params_case(
        "params_unknown_key",
        "dedup:\n  treshold: 0.8\n",
        r": dedup\.treshold: unknown key; did you mean 'threshold'\?$",
    ),
    params_case(
        "params_bad_choice",
        "tokenize:\n  template: llama\n",
        r": tokenize\.template: expected one of 'chat', 'markers', found 'llama'$",
    ),
    params_case(
        "params_unknown_verifier",
        "ppo:\n  verifiers: [{name: regexp}]\n",
        r": ppo\.verifiers\[0\]\.name: unknown verifier 'regexp': one of ifeval, regex, length, exact, math, ",
    ),
    params_case(
        "params_verifier_path_not_importable",
        "ppo:\n  verifiers: [{name: 'no_such_package.checks:score'}]\n",
        r": ppo\.verifiers\[0\]\.name: cannot import 'no_such_package.checks' ",
    ),
    params_case("params_section_not_mapping", "dedup: 3\n", r": dedup: expected a mapping, found 3$"),
    params_case(
        "params_nul_byte", "dedup:\n  threshold: 0.9\x00\n", r":8: invalid YAML \(character 0x0000 is not allowed\)$"
    ),
    Case(
        "params_not_utf8",
        "params",
        "params.yaml",
        params_text().encode() + "# café\n".encode("latin-1"),
        r":7: not valid UTF-8 \(byte 0xe9\); save it as UTF-8$",
    ),
    Case(
        "params_deeply_nested",
        "params",
        "params.yaml",
        lambda: params_text().encode() + b"x: " + b"[" * DEEP,
        r": invalid YAML \(nested too deeply\)$",
    ),
    Case(
        "params_not_a_mapping",
        "params",
        "params.yaml",
        b"- ingest\n- dedup\n",
        r": expected a mapping of sections, found list$",
    ),
]
assert len({case.id for case in CASES}) == len(CASES)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.parts[len(root.parts)] in ("data", "models", "metrics")
    }


@pytest.fixture
def project(tmp_path):
    """Good sources in in/, a params.yaml naming them, and previous outputs of ingest that must survive."""
    (tmp_path / "in").mkdir()
    for name, record in GOOD.items():
        (tmp_path / "in" / f"{name}.jsonl").write_bytes(jsonl(record))
    (tmp_path / "params.yaml").write_text(params_text())
    for path, text in PREVIOUS_OUTPUTS.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def install(project: Path, case: Case) -> None:
    if case.dataset == "params":
        (project / "params.yaml").write_bytes(case.bytes())
        return
    (project / "in" / case.name).write_bytes(case.bytes())
    (project / "params.yaml").write_text(params_text(**{case.dataset: f"in/{case.name}"}))


def check_error_line(text: str, case: Case) -> None:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text[:1000]!r}"
    assert len(lines[0]) < MAX_ERROR_LENGTH, f"error line of {len(lines[0])} characters: {lines[0][:200]}..."
    assert re.match("error: " + case.pattern(), lines[0]), lines[0]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_input_fails_ingest_with_one_line(case, project, monkeypatch, capsys):
    from alignflow import tracking
    from alignflow.stages import ingest

    def accepted(*args, **kwargs):
        raise AssertionError(f"{case.id}: ingest accepted the input and started its MLflow run")

    monkeypatch.setattr(tracking, "stage_run", accepted)
    monkeypatch.chdir(project)
    install(project, case)
    before = snapshot(project)
    with pytest.raises(SystemExit) as exit_info:
        ingest.main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    check_error_line(captured.err, case)
    assert snapshot(project) == before


def test_the_table_has_at_least_30_cases_across_every_format():
    formats = {case.name.rpartition(".")[2] for case in CASES}
    assert len(CASES) >= 30 and formats == {"jsonl", "json", "csv", "parquet", "yaml"}


SUBPROCESS_CASES = (
    "csv_unterminated_quote",
    "parquet_corrupt_metadata",
    "jsonl_duplicate_id_across_files",
    "params_number_as_string",
)


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_the_stage_command_exits_1_with_one_line(case_id, project):
    """The real `python -m alignflow.stages.ingest` (it validates every source before importing MLflow or torch)."""
    case = next(case for case in CASES if case.id == case_id)
    install(project, case)
    before = snapshot(project)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "alignflow.stages.ingest"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    check_error_line(result.stderr, case)
    assert result.stdout == "" and snapshot(project) == before


# Inputs that look odd but are well-formed: accepted, and read as the text they hold.


def read(dataset: str, path: Path, content: bytes):
    path.write_bytes(content)
    return validate_source(dataset, SourceParams(str(path))).records


def test_utf8_bom_is_accepted_in_every_text_format(tmp_path):
    bom = b"\xef\xbb\xbf"
    assert read("prompts", tmp_path / "p.jsonl", bom + jsonl(PROMPT)) == [PROMPT]
    assert read("prompts", tmp_path / "p.json", bom + json.dumps([PROMPT]).encode()) == [PROMPT]
    assert read("prompts", tmp_path / "p.csv", bom + b"id,prompt\np-1,How do I keep basil fresh?\n") == [PROMPT]
    (tmp_path / "params.yaml").write_bytes(bom + b"dedup:\n  threshold: 0.8\n")
    assert load_params(tmp_path / "params.yaml").dedup.threshold == 0.8


def test_crlf_line_endings_are_accepted_and_leave_no_carriage_returns(tmp_path):
    assert read("prompts", tmp_path / "p.jsonl", jsonl(PROMPT, EVAL).replace(b"\n", b"\r\n")) == [PROMPT, EVAL]
    crlf_json = json.dumps([PROMPT], indent=1).encode().replace(b"\n", b"\r\n")
    assert read("prompts", tmp_path / "p.json", crlf_json) == [PROMPT]
    records = read("prompts", tmp_path / "p.csv", b'id,prompt\r\np-1,"two\r\nlines"\r\np-2,one\r\n')
    assert records == [{"id": "p-1", "prompt": "two\nlines"}, {"id": "p-2", "prompt": "one"}]
    (tmp_path / "params.yaml").write_bytes(b"dedup:\r\n  threshold: 0.8\r\n")
    assert load_params(tmp_path / "params.yaml").dedup.threshold == 0.8


def test_a_valid_5mb_line_is_accepted(tmp_path):
    (record,) = read("prompts", tmp_path / "p.jsonl", jsonl({"id": "p-1", "prompt": "word " * 1_000_000}))
    assert len(record["prompt"]) == 5_000_000 - 1


def test_quoted_csv_fields_with_commas_quotes_and_newlines_still_read(tmp_path):
    records = read("prompts", tmp_path / "p.csv", b'id,prompt\np-1,"Say ""hi"", then\nleave"\np-2,ok\n')
    assert records == [{"id": "p-1", "prompt": 'Say "hi", then\nleave'}, {"id": "p-2", "prompt": "ok"}]


def test_csv_records_are_located_by_their_first_line(tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text('text\n"### Human: Hi\n### Assistant: Hello"\n"### Human: Bye ### Assistant: Take care."\n')
    source = SourceParams(str(path), fields={"transcript": "text"}, generate_ids=True)
    assert [r["id"] for r in validate_source("sft", source).records] == ["hh-2", "hh-4"]


def test_parquet_with_nested_columns_reads(tmp_path):
    content = parquet(id=["c-1"], prompt=["q"], responses=[[{"text": "a", "score": 8}, {"text": "b", "score": 2}]])
    (record,) = read("comparisons", tmp_path / "c.parquet", content)
    assert record["pairs"][0]["chosen"] == "a"


def test_ids_may_repeat_across_datasets_read_from_one_file_and_skip_mode_drops_duplicates():
    shared = SourceParams("in/hh.csv")
    validated = {
        "sft": Validated([{"id": "hh-2"}], locations=[2]),
        "comparisons": Validated([{"id": "hh-2"}], locations=[2]),
        "prompts": Validated([{"id": "hh-2"}, {"id": "p-2"}], locations=[1, 2]),
    }
    sources = {"sft": shared, "comparisons": shared, "prompts": SourceParams("in/prompts.jsonl")}
    with pytest.raises(
        DataError, match=r"in/prompts\.jsonl:1: id: duplicate id 'hh-2': sft uses it too \(in/hh\.csv:2\)"
    ):
        check_ids_across_sources(dict(validated), sources)
    check_ids_across_sources(validated, sources, on_error="skip")
    assert [r["id"] for r in validated["comparisons"].records] == ["hh-2"]
    assert [r["id"] for r in validated["prompts"].records] == ["p-2"] and len(validated["prompts"].rejects) == 1
