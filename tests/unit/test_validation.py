"""Every bad input named in the data contract gets one line: file:line: field: problem."""

import json

import pytest

from alignflow.config import SourceParams
from alignflow.data.validate import validate_source
from alignflow.errors import DataError

GOOD_SFT = {"id": "a", "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
GOOD_CMP = {
    "id": "c",
    "prompt": "Tea or coffee?",
    "responses": [{"text": "Either is fine.", "score": 8}, {"text": "Go away.", "score": 2}],
}


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def check(dataset, path, pattern, on_error="fail"):
    with pytest.raises(DataError, match=pattern) as info:
        validate_source(dataset, SourceParams(str(path)), on_error)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_and_empty_file(tmp_path):
    check("sft", tmp_path / "nope.jsonl", r"nope\.jsonl: file not found")
    check("sft", write_lines(tmp_path / "empty.jsonl"), r"empty\.jsonl: file is empty")


def test_invalid_json_line_names_the_line(tmp_path):
    path = write_lines(tmp_path / "sft.jsonl", GOOD_SFT, '{"id": "b", "messages": [')
    check("sft", path, r"sft\.jsonl:2: invalid JSON")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_bytes(json.dumps(GOOD_SFT).encode() + b"\n" + b'{"id": "b", "prompt": "caf\xe9", "response": "x"}\n')
    check("sft", path, r"sft\.jsonl:2: not valid UTF-8")


@pytest.mark.parametrize(
    "record, pattern",
    [
        ({"messages": GOOD_SFT["messages"]}, r":1: id: missing"),
        ({"id": "a"}, r":1: messages: missing"),
        ({"id": "a", "messages": "hi"}, r":1: messages: expected a list"),
        (
            {"id": "a", "messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]},
            r":1: messages\[0\]\.content: empty",
        ),
        (
            {"id": "a", "messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
            r":1: messages\[0\]\.content: expected a string, found int",
        ),
        (
            {"id": "a", "messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "x"}]},
            r":1: messages\[0\]\.role: unknown role 'human'",
        ),
        (
            {"id": "a", "messages": [{"role": "user", "content": "hi"}]},
            r":1: messages: conversation must end with an assistant turn",
        ),
        ({"id": "a", "prompt": "hi", "response": ""}, r":1: response: empty"),
    ],
)
def test_sft_record_problems(tmp_path, record, pattern):
    check("sft", write_lines(tmp_path / "sft.jsonl", record), r"sft\.jsonl" + pattern)


def test_duplicate_ids(tmp_path):
    path = write_lines(tmp_path / "sft.jsonl", GOOD_SFT, {**GOOD_SFT})
    check("sft", path, r"sft\.jsonl:2: id: duplicate id 'a' \(first at line 1\)")


@pytest.mark.parametrize(
    "record, pattern",
    [
        (
            {**GOOD_CMP, "responses": [{"text": "a", "score": 11}, {"text": "b", "score": 2}]},
            r":1: responses\[0\]\.score: score 11(\.0)? outside 1-10",
        ),
        (
            {**GOOD_CMP, "responses": [{"text": "a", "score": 0}, {"text": "b", "score": 2}]},
            r":1: responses\[0\]\.score: score 0(\.0)? outside 1-10",
        ),
        ({**GOOD_CMP, "responses": [{"text": "a", "score": 5}]}, r":1: responses: need at least 2 responses"),
        (
            {**GOOD_CMP, "responses": [{"text": "a", "score": 5}, {"text": "b", "score": 5}]},
            r":1: responses: all scores are equal",
        ),
        (
            {**GOOD_CMP, "responses": [{"text": "a", "score": "high"}, {"text": "b", "score": 5}]},
            r":1: responses\[0\]\.score: expected a number",
        ),
        ({"id": "c", "prompt": "q", "chosen": "same", "rejected": "same"}, r":1: rejected: identical to chosen"),
        (
            {**GOOD_CMP, "prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            r":1: prompt: conversation must end with a user turn",
        ),
        (
            {**GOOD_CMP, "prompt": [{"role": "user", "content": "q"}, {"role": "user", "content": "again"}]},
            r":1: prompt\[1\]\.role: expected 'assistant'",
        ),
    ],
)
def test_comparison_problems(tmp_path, record, pattern):
    check("comparisons", write_lines(tmp_path / "cmp.jsonl", record), r"cmp\.jsonl" + pattern)


def test_comparisons_become_all_ordered_pairs_with_score_gap(tmp_path):
    record = {
        **GOOD_CMP,
        "responses": [{"text": "ok", "score": 6}, {"text": "best", "score": 9}, {"text": "bad", "score": 2}],
    }
    (result,) = validate_source("comparisons", SourceParams(str(write_lines(tmp_path / "c.jsonl", record)))).records
    assert sorted((p["chosen"], p["rejected"], p["score_gap"]) for p in result["pairs"]) == [
        ("best", "bad", 7.0),
        ("best", "ok", 3.0),
        ("ok", "bad", 4.0),
    ]


def test_skip_mode_counts_bad_records_and_keeps_good_ones(tmp_path):
    path = write_lines(
        tmp_path / "sft.jsonl",
        GOOD_SFT,
        "not json",
        {"id": "b", "prompt": "q"},
        {"id": "c", "prompt": "q", "response": "r"},
    )
    result = validate_source("sft", SourceParams(str(path)), on_error="skip")
    assert [r["id"] for r in result.records] == ["a", "c"]
    assert [e.line for e in result.rejects] == [2, 3]
    assert "sft.jsonl:3: response: missing" in str(result.rejects[1])


def test_a_conversational_prompt_keeps_its_earlier_turns(tmp_path):
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tea or coffee?"},
    ]
    path = write_lines(tmp_path / "c.jsonl", {"id": "c", "prompt": turns, "chosen": "Tea, today.", "rejected": "No."})
    (record,) = validate_source("comparisons", SourceParams(str(path))).records
    assert (record["prompt"], record["context"]) == ("Tea or coffee?", turns[:2])
    reread = write_lines(tmp_path / "again.jsonl", record)  # the canonical form, as later stages read it back
    assert validate_source("comparisons", SourceParams(str(reread))).records == [record]


TURNS = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Name a fruit."},
]


def test_an_eval_prompt_given_as_turns_becomes_its_last_user_turn_plus_context(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    path = write_lines(
        tmp_path / "my_prompts.jsonl", {"id": "a", "prompt": [system, *TURNS]}, {"id": "b", "prompt": "Why?"}
    )
    records = validate_source("eval_prompts", SourceParams(str(path))).records
    assert records == [
        {"id": "a", "prompt": "Name a fruit.", "context": [system, *TURNS[:2]]},
        {"id": "b", "prompt": "Why?"},
    ]
    reread = write_lines(tmp_path / "again.jsonl", *records)  # the canonical form, as the tokenize stage reads it
    assert validate_source("eval_prompts", SourceParams(str(reread))).records == records


@pytest.mark.parametrize(
    "turns, pattern",
    [
        (
            [*TURNS[:2], {"role": "assistant", "content": "x"}],
            r":2: prompt\[2\]\.role: expected 'user' \(turns alternate user/assistant\), found 'assistant'$",
        ),
        (
            [*TURNS[:2], {"role": "bot", "content": "x"}],
            r":2: prompt\[2\]\.role: unknown role 'bot'; expected one of system, user, assistant$",
        ),
        ([*TURNS[:2], {"role": "user", "content": " "}], r":2: prompt\[2\]\.content: empty$"),
        ([*TURNS[:2], "Name a fruit."], r":2: prompt\[2\]: expected an object with role and content, found str$"),
        (TURNS[:2], r":2: prompt: conversation must end with a user turn$"),
    ],
)
def test_eval_prompt_turn_problems(tmp_path, turns, pattern):
    path = write_lines(tmp_path / "my_prompts.jsonl", {"id": "ok", "prompt": "Why?"}, {"id": "a", "prompt": turns})
    check("eval_prompts", path, r"my_prompts\.jsonl" + pattern)


def test_csv_and_field_mapping_with_transcripts(tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text('text\n"### Human: Hi there ### Assistant: Hello! ### Human: Bye ### Assistant: Take care."\n')
    source = SourceParams(str(path), fields={"transcript": "text"}, generate_ids=True)
    (record,) = validate_source("sft", source).records
    assert record["id"] == "hh-2"
    assert [(m["role"], m["content"]) for m in record["messages"]] == [
        ("user", "Hi there"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
        ("assistant", "Take care."),
    ]


def test_hub_source_offline_fails_with_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hub:someone/nonexistent-set: cannot load hub dataset") as info:
        validate_source("sft", SourceParams("hub:someone/nonexistent-set"))
    assert "\n" not in str(info.value)
