"""Presets: rows written in each public dataset's own schema (built here from the schema) go through ingest's
validation and tokenize; errors name the source's column; `fields:` renames compose; every file format and
`hub:` read the same way."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from alignflow.config import SourceParams, TokenizeParams
from alignflow.data.formatting import prepare_tokenizer
from alignflow.data.presets import PRESETS, describe, validate_mapped
from alignflow.data.tokenize import reward_pairs, tokenize_prompts, tokenize_sft
from alignflow.errors import DataError

HH_HEAD = "\n\nHuman: How do I keep basil?\n\nAssistant: In water on the counter.\n\nHuman: And mint?"
BASIL = [
    {"role": "user", "content": "How do I keep basil?"},
    {"role": "assistant", "content": "In water on the counter."},
    {"role": "user", "content": "And mint?"},
]


def chat(content: str, role: str = "assistant") -> dict[str, str]:
    return {"role": role, "content": content}


def write(path, rows: list[dict], fmt: str = "jsonl"):
    path = path.with_suffix(f".{fmt}")
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif fmt == "jsonl.gz":
        path.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode()))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "csv":
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return path


def ingest(tmp_path, preset: str, dataset: str, rows: list[dict], fmt: str = "jsonl", **source) -> list[dict]:
    path = write(tmp_path / f"{preset}-{dataset}", rows, fmt)
    return validate_mapped(dataset, SourceParams(str(path), preset=preset, **source)).records


def error(tmp_path, preset: str, dataset: str, rows: list[dict], **source) -> str:
    with pytest.raises(DataError) as caught:
        ingest(tmp_path, preset, dataset, rows, **source)
    return str(caught.value).removeprefix(f"{tmp_path}/")


@pytest.fixture
def tokenizer(tiny_lm):
    import copy

    tokenizer = copy.deepcopy(tiny_lm[1])
    return tokenizer, prepare_tokenizer(tokenizer, TokenizeParams(template="chat"))


def tokenized(tokenizer, dataset: str, records: list[dict]) -> list[dict]:
    """The records through tokenize, as the stage does: every one gives a row with tokens."""
    tokenizer, chat_format = tokenizer
    if dataset == "sft":
        rows, counts = tokenize_sft(records, tokenizer, chat_format, 256)
    elif dataset == "comparisons":
        rows, counts = reward_pairs(records, tokenizer, 256)
    else:
        rows, counts = tokenize_prompts(records, tokenizer, chat_format, 256)
    assert rows and all(row.get("input_ids") or row.get("chosen_ids") for row in rows)
    return rows


# One row per preset and dataset kind in the public schema, and the canonical record it must become.
SCHEMAS = {
    ("hh-rlhf", "comparisons"): (
        {"chosen": f"{HH_HEAD}\n\nAssistant: Mint keeps the same way.", "rejected": f"{HH_HEAD}\n\nAssistant: No."},
        {"prompt": "And mint?", "context": BASIL[:2], "pairs": [("Mint keeps the same way.", "No.", None)]},
    ),
    ("hh-rlhf", "sft"): (
        {"chosen": f"{HH_HEAD}\n\nAssistant: Mint keeps the same way.", "rejected": f"{HH_HEAD}\n\nAssistant: No."},
        {"messages": [*BASIL, chat("Mint keeps the same way.")]},
    ),
    ("hh-rlhf", "prompts"): (
        {"chosen": f"{HH_HEAD}\n\nAssistant: Mint keeps the same way.", "rejected": f"{HH_HEAD}\n\nAssistant: No."},
        {"prompt": "And mint?", "context": BASIL[:2]},
    ),
    ("ultrafeedback-binarized", "comparisons"): (
        {
            "prompt": "Name a prime.",
            "prompt_id": "ab12",
            "chosen": [chat("Name a prime.", "user"), chat("7 is prime.")],
            "rejected": [chat("Name a prime.", "user"), chat("9.")],
            "messages": [chat("Name a prime.", "user"), chat("7 is prime.")],
            "score_chosen": 8.5,
            "score_rejected": 3.0,
        },
        {"prompt": "Name a prime.", "pairs": [("7 is prime.", "9.", 5.5)]},
    ),
    ("ultrafeedback-binarized", "sft"): (
        {"prompt": "Hi?", "chosen": [chat("Hi?", "user"), chat("Hello.")], "rejected": [], "messages": []},
        {"messages": [chat("Hi?", "user"), chat("Hello.")]},
    ),
    ("ultrafeedback", "comparisons"): (
        {
            "source": "evol_instruct",
            "instruction": "Explain rain.",
            "models": ["a", "b", "c", "d"],
            "completions": [
                {"model": m, "response": text, "overall_score": score, "critique": "", "fine-grained_score": 4.0}
                for m, text, score in [("a", "Clouds.", 3.0), ("b", "Water falls.", 7.5), ("c", "Rain.", 5.0)]
                + [("d", "Condensed vapour falls.", 9.0)]
            ],
            "correct_answers": [],
            "incorrect_answers": [],
        },
        {"prompt": "Explain rain.", "pair_count": 6},
    ),
    ("ultrafeedback", "sft"): (
        {
            "instruction": "Explain rain.",
            "completions": [{"response": "Clouds.", "overall_score": 3}, {"response": "Vapour.", "overall_score": 8}],
        },
        {"messages": [chat("Explain rain.", "user"), chat("Vapour.")]},
    ),
    ("shp", "comparisons"): (
        {
            "post_id": "x1",
            "domain": "askscience_train",
            "upvote_ratio": 0.99,
            "history": "Why do cats purr?",
            "c_root_id_A": "a",
            "c_root_id_B": "b",
            "created_at_utc_A": 1,
            "created_at_utc_B": 2,
            "score_A": 10,
            "score_B": 40,
            "human_ref_A": "No idea.",
            "human_ref_B": "Vibrations of the larynx.",
            "labels": 0,
            "seconds_difference": 1.0,
            "score_ratio": 4.0,
        },
        {"prompt": "Why do cats purr?", "pairs": [("Vibrations of the larynx.", "No idea.", 2.0)]},
    ),
    ("trl", "comparisons"): (
        {"prompt": [chat("Hi?", "user")], "chosen": [chat("Hello!")], "rejected": [chat("Go away.")]},
        {"prompt": "Hi?", "pairs": [("Hello!", "Go away.", None)]},
    ),
    ("trl", "sft"): (
        {"prompt": "Capital of France?", "completion": "Paris."},
        {"messages": [chat("Capital of France?", "user"), chat("Paris.")]},
    ),
    ("alpaca", "sft"): (
        {"instruction": "Translate to French.", "input": "cat", "output": "chat", "text": "ignored"},
        {"messages": [chat("Translate to French.\n\ncat", "user"), chat("chat")]},
    ),
    ("alpaca", "prompts"): (
        {"instruction": "Name a colour.", "input": "", "output": "Red."},
        {"prompt": "Name a colour."},
    ),
    ("dolly", "sft"): (
        {"instruction": "Summarise.", "context": "Rain falls.", "response": "It rains.", "category": "summarization"},
        {"messages": [chat("Summarise.\n\nRain falls.", "user"), chat("It rains.")]},
    ),
    ("sharegpt", "sft"): (
        {"id": "s1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]},
        {"messages": [chat("Hi", "user"), chat("Hello.")]},
    ),
    ("sharegpt", "prompts"): (
        {"conversations": [{"from": "system", "value": "Be kind."}, *[{"from": "human", "value": "Hi"}]]},
        {"prompt": "Hi", "context": [chat("Be kind.", "system")]},
    ),
    ("openai", "sft"): (
        {"messages": [chat("Be brief.", "system"), chat("Hi", "user"), chat("Hello.")]},
        {"messages": [chat("Be brief.", "system"), chat("Hi", "user"), chat("Hello.")]},
    ),
    ("openai", "comparisons"): (
        {
            "input": {"messages": [chat("Hi", "user")], "tools": [], "parallel_tool_calls": True},
            "preferred_output": [chat("Hello!")],
            "non_preferred_output": [chat("What.")],
        },
        {"prompt": "Hi", "pairs": [("Hello!", "What.", None)]},
    ),
    ("rlvr", "prompts"): (
        {"messages": [chat("Tom has 3 apples and eats one. How many are left?", "user")], "ground_truth": "2"}
        | {"dataset": "gsm8k"},
        {"prompt": "Tom has 3 apples and eats one. How many are left?", "ground_truth": "2"},
    ),
}


@pytest.mark.parametrize("preset, dataset", list(SCHEMAS), ids=[f"{p}-{d}" for p, d in SCHEMAS])
def test_a_row_in_the_public_schema_becomes_the_canonical_record_and_tokenizes(tmp_path, tokenizer, preset, dataset):
    row, expected = SCHEMAS[(preset, dataset)]
    (record,) = ingest(tmp_path, preset, dataset, [row])
    assert record["id"] == row.get("id", f"{preset}-{dataset}-1")
    if "messages" in expected:
        assert record["messages"] == expected["messages"]
    if "prompt" in expected:
        assert (record["prompt"], record.get("context")) == (expected["prompt"], expected.get("context"))
    if "pairs" in expected:
        pairs = [(p["chosen"], p["rejected"], p["score_gap"]) for p in record["pairs"]]
        assert pairs == expected["pairs"]
    if "pair_count" in expected:
        assert len(record["pairs"]) == expected["pair_count"]
    assert record.get("ground_truth") == expected.get("ground_truth")
    tokenized(tokenizer, dataset, [record])


def test_every_preset_has_a_schema_test_and_at_least_ten_are_listed():
    assert len(PRESETS) >= 10
    assert {preset for preset, _ in SCHEMAS} | {"helpsteer2", "trl-unpaired"} == set(PRESETS)
    listing = describe()
    for preset in PRESETS.values():
        assert preset.name in listing and all(", ".join(columns) in listing for columns in preset.reads.values())


def helpsteer_row(prompt: str, response: str, ratings: tuple[int, int, int, int, int]) -> dict:
    names = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    return {"prompt": prompt, "response": response, **dict(zip(names, ratings))}


def test_helpsteer2_rows_of_one_prompt_form_a_group_scored_by_the_documented_weights(tmp_path, tokenizer):
    rows = [
        helpsteer_row("Explain tides.", "The moon pulls water.", (4, 4, 4, 2, 1)),
        helpsteer_row("Explain tides.", "Waves.", (1, 2, 3, 0, 0)),
        helpsteer_row("Name a fruit.", "Apple.", (3, 4, 4, 0, 0)),
        helpsteer_row("Name a fruit.", "A fruit is the seed-bearing part of a plant; an apple.", (4, 4, 4, 1, 2)),
    ]
    tides, fruit = ingest(tmp_path, "helpsteer2", "comparisons", rows)
    assert (tides["id"], fruit["id"]) == ("helpsteer2-comparisons-1", "helpsteer2-comparisons-3")
    (pair,) = tides["pairs"]
    score = lambda r: 1 + 9 * (0.65 * r[0] + 0.8 * r[1] + 0.45 * r[2] + 0.55 * r[3] - 0.4 * r[4] + 1.6) / 11.4  # noqa: E731
    assert pair["chosen"] == "The moon pulls water."
    assert pair["score_gap"] == pytest.approx(score((4, 4, 4, 2, 1)) - score((1, 2, 3, 0, 0)))
    assert fruit["pairs"][0]["chosen"].startswith("A fruit")
    tokenized(tokenizer, "comparisons", [tides, fruit])
    assert "helpsteer2-sft-2" in {r["id"] for r in ingest(tmp_path, "helpsteer2", "sft", rows)}


def test_trl_unpaired_rows_pair_each_desirable_completion_with_each_undesirable_one(tmp_path, tokenizer):
    rows = [
        {"prompt": "Hi?", "completion": "Hello!", "label": True},
        {"prompt": "Hi?", "completion": "Go away.", "label": False},
        {"prompt": "Hi?", "completion": "Hey there.", "label": True},
        {"prompt": "Bye?", "completion": "Bye!", "label": True},
    ]
    records = validate_mapped(
        "comparisons", SourceParams(str(write(tmp_path / "kto", rows)), preset="trl-unpaired"), on_error="skip"
    )
    (record,) = records.records
    assert {(p["chosen"], p["rejected"], p["score_gap"]) for p in record["pairs"]} == {
        ("Hello!", "Go away.", None),
        ("Hey there.", "Go away.", None),
    }
    (reject,) = records.rejects
    assert str(reject).endswith("kto.jsonl:4: label: need at least 2 responses to compare, found 1")
    tokenized(tokenizer, "comparisons", [record])


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "json", "parquet", "csv"])
def test_a_preset_reads_every_file_format_alike(tmp_path, fmt):
    row, _ = SCHEMAS[("ultrafeedback-binarized", "comparisons")]
    (record,) = ingest(tmp_path, "ultrafeedback-binarized", "comparisons", [row], fmt)
    assert record["pairs"][0]["score_gap"] == 5.5 and record["prompt"] == "Name a prime."


def test_a_preset_reads_a_hub_dataset(tmp_path):
    """`hub:` goes through `datasets.load_dataset`, which also loads a dataset folder without the network."""
    folder = tmp_path / "shp"
    folder.mkdir()
    row, _ = SCHEMAS[("shp", "comparisons")]
    write(folder / "train", [row, {**row, "labels": 1}])
    source = SourceParams(f"hub:{folder}", split="train", preset="shp")
    first, second = validate_mapped("comparisons", source).records
    assert first["id"] == "shp-train-1" and second["pairs"][0]["chosen"] == "No idea."


def test_fields_rename_a_presets_columns(tmp_path):
    row, _ = SCHEMAS[("hh-rlhf", "comparisons")]
    renamed = [{"good": row["chosen"], "bad": row["rejected"]}]
    fields = {"chosen": "good", "rejected": "bad"}
    (record,) = ingest(tmp_path, "hh-rlhf", "comparisons", renamed, fields=fields)
    assert record["pairs"][0]["chosen"] == "Mint keeps the same way."
    broken = [{"good": row["chosen"], "bad": 7}]
    assert error(tmp_path, "hh-rlhf", "comparisons", broken, fields=fields).endswith(
        ":1: bad: expected a string, found int"
    )


def test_a_skip_and_limit_slice_of_one_file(tmp_path):
    rows = [{"instruction": f"Say {n}.", "input": "", "output": str(n)} for n in range(10)]
    records = ingest(tmp_path, "alpaca", "prompts", rows, skip=6, limit=3)
    assert [r["prompt"] for r in records] == ["Say 6.", "Say 7.", "Say 8."]
    assert records[0]["id"] == "alpaca-prompts-7"  # ids keep the record's place in the whole file


ERRORS = [
    ("hh-rlhf", "comparisons", {"chosen": "Human: hi", "rejected": "x"}, ":1: chosen: expected an hh-rlhf transcript"),
    (
        "hh-rlhf",
        "comparisons",
        {"chosen": f"{HH_HEAD}\n\nAssistant: Yes.", "rejected": "\n\nHuman: Other?\n\nAssistant: No."},
        ":1: rejected: its turns before the last reply differ from chosen's",
    ),
    (
        "hh-rlhf",
        "comparisons",
        {"chosen": f"{HH_HEAD}\n\nAssistant: Same.", "rejected": f"{HH_HEAD}\n\nAssistant: Same."},
        ":1: rejected: identical to chosen",
    ),
    (
        "ultrafeedback",
        "comparisons",
        {"instruction": "Q", "completions": [{"response": "a", "overall_score": 3}, {"response": "b"}]},
        ":1: completions[1].overall_score: missing",
    ),
    (
        "ultrafeedback",
        "comparisons",
        {
            "instruction": "Q",
            "completions": [{"response": "a", "overall_score": 3}, {"response": "b", "overall_score": 11}],
        },
        ":1: completions[1].overall_score: score 11.0 outside 1-10",
    ),
    (
        "ultrafeedback-binarized",
        "comparisons",
        {**SCHEMAS[("ultrafeedback-binarized", "comparisons")][0], "score_rejected": 8.5},
        ":1: score_chosen: 8.5 is not above score_rejected 8.5: no preference to learn",
    ),
    (
        "ultrafeedback-binarized",
        "comparisons",
        {**SCHEMAS[("ultrafeedback-binarized", "comparisons")][0], "chosen": [chat("Hi", "user"), chat("x", "user")]},
        ":1: chosen[1].role: expected 'assistant' (turns alternate user/assistant), found 'user'",
    ),
    ("shp", "comparisons", {**SCHEMAS[("shp", "comparisons")][0], "labels": 2}, ":1: labels: expected 1"),
    (
        "shp",
        "comparisons",
        {**SCHEMAS[("shp", "comparisons")][0], "score_ratio": "many"},
        ":1: score_ratio: expected a number",
    ),
    ("helpsteer2", "comparisons", helpsteer_row("Q", "A", (5, 0, 0, 0, 0)), ":1: helpfulness: 5 outside 0-4"),
    ("trl-unpaired", "comparisons", {"prompt": "Q", "completion": "A", "label": "yes"}, ":1: label: expected true"),
    ("alpaca", "sft", {"instruction": "Q", "input": "", "output": ""}, ":1: output: empty"),
    ("dolly", "sft", {"instruction": "Q", "context": 3, "response": "A"}, ":1: context: expected a string, found int"),
    (
        "sharegpt",
        "sft",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "x"}]},
        ":1: conversations[1].from: unknown speaker 'robot'",
    ),
    (
        "sharegpt",
        "sft",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": 5}]},
        ":1: conversations[1].value: expected a string, found int",
    ),
    ("openai", "prompts", {"messages": [chat("Hi")]}, ":1: messages[0].role: expected 'user'"),
    (
        "trl",
        "comparisons",
        {"prompt": "Q", "chosen": [chat("a"), chat("b")], "rejected": "c"},
        ":1: chosen: expected one",
    ),
]


def rlvr_ifeval(ground_truth) -> dict:
    return {"messages": [chat("Describe a lake.", "user")], "ground_truth": ground_truth, "dataset": "ifeval"}


@pytest.mark.parametrize(
    "ground_truth",
    [
        json.dumps({"func_name": "validate_word_constraint", "N": 50, "quantifier": "at most", "end_phrase": None}),
        json.dumps(
            [
                {
                    "instruction_id": ["length_constraints:number_words"],
                    "kwargs": [{"num_words": 51, "relation": "less than"}],
                }
            ]
        ),
    ],
    ids=["function-spelling", "ifeval-spelling"],
)
def test_rlvr_ifeval_rows_become_constraints_that_ifevals_checkers_read(tmp_path, ground_truth):
    from alignflow.verifiers.checks import ifeval

    (record,) = ingest(tmp_path, "rlvr", "prompts", [rlvr_ifeval(ground_truth)])
    assert record["constraints"][0]["instruction_id"] == "length_constraints:number_words"
    relation = record["constraints"][0]["kwargs"].get("relation", "less than")
    assert (relation, record["constraints"][0]["kwargs"]["num_words"]) == ("less than", 51)
    record = {
        **record,
        "constraints": [{**record["constraints"][0], "kwargs": {"num_words": 51, "relation": relation}}],
    }
    assert ifeval("A calm lake.", record) == 1.0 and ifeval("water " * 60, record) == 0.0


@pytest.mark.parametrize(
    "ground_truth, expected",
    [
        ('{"func_name": "validate_choice", "options": "yes, no"}', ":1: ground_truth.func_name: 'validate_choice' has"),
        ('{"func_name": "validate_word_constraint", "N": 5, "quantifier": "around"}', ":1: ground_truth.quantifier:"),
        ("{not json", ":1: ground_truth: not JSON"),
        (
            '{"instruction_id": ["punctuation:no_comma", "change_case:english_capital"], "kwargs": [{}]}',
            "1 kwargs for 2",
        ),
    ],
)
def test_an_rlvr_row_without_an_exact_ifeval_checker_is_one_line(tmp_path, ground_truth, expected):
    message = error(tmp_path, "rlvr", "prompts", [rlvr_ifeval(ground_truth)])
    assert expected in message and "\n" not in message, message


@pytest.mark.parametrize("preset, dataset, row, expected", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_the_sources_own_column(tmp_path, preset, dataset, row, expected):
    message = error(tmp_path, preset, dataset, [row])
    assert expected in message and "\n" not in message, message


def test_an_unknown_preset_or_one_that_maps_no_such_data_is_one_line(tmp_path):
    from alignflow.errors import ConfigError

    path = write(tmp_path / "x", [{"prompt": "Q", "completion": "A", "label": True}])
    with pytest.raises(ConfigError, match=r"ingest.sft: preset 'trl-unpaired' \(.*x.jsonl\) maps comparisons, prompts"):
        validate_mapped("sft", SourceParams(str(path), preset="trl-unpaired"))
    with pytest.raises(ConfigError, match=r"ingest.sft.preset: unknown preset 'alpacca'; did you mean 'alpaca'\?"):
        validate_mapped("sft", SourceParams(str(path), preset="alpacca"))


def test_a_public_multi_response_group_keeps_all_its_pairs_and_a_huge_group_is_capped(tmp_path):
    raw, _ = SCHEMAS[("ultrafeedback", "comparisons")]
    (record,) = ingest(tmp_path, "ultrafeedback", "comparisons", [raw])
    assert len(record["pairs"]) == math.comb(4, 2)

    scores = [1 + (n * 7919 % 9000) / 1000 for n in range(3000)]
    group = {
        "id": "big",
        "prompt": "Rate me.",
        "responses": [{"text": f"r{n}", "score": s} for n, s in enumerate(scores)],
    }
    path = write(tmp_path / "big", [group])
    first = validate_mapped("comparisons", SourceParams(str(path)), max_pairs=16, seed=42).records[0]["pairs"]
    again = validate_mapped("comparisons", SourceParams(str(path)), max_pairs=16, seed=42).records[0]["pairs"]
    other = validate_mapped("comparisons", SourceParams(str(path)), max_pairs=16, seed=43).records[0]["pairs"]
    assert len(first) == 16 and first == again and first != other
    assert all(p["score_gap"] > 0 for p in first)
