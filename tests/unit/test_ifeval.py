"""IFEval: lm-eval's checkers on hand-written answers, offline sentence splitting under the network guard, the
aggregate metrics, the paired interval of a difference, one-line errors for bad records and models, the shipped
file, and greedy decoding."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alignflow.errors import DataError
from alignflow.evaluation.ifeval import (
    IFEvalItem,
    Verdicts,
    follows,
    ifeval_metrics,
    paired_difference,
    parse_item,
    read_ifeval,
    seeded_subset,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data/benchmarks/ifeval/input_data.jsonl"


def item(instruction: str, prompt: str = "Write something.", **kwargs) -> IFEvalItem:
    return IFEvalItem(1, prompt, (instruction,), (kwargs,))


FOUR_SENTENCES = "The sky is blue. Grass is green. Snow is white. Coal is black."

# (instruction id, kwargs, an answer that follows it, one that does not): one per checker family
CASES = [
    ("change_case:english_lowercase", {}, "all of this is lower case.", "This Has Capitals."),
    ("punctuation:no_comma", {}, "No commas here at all.", "Well, here is one."),
    ("length_constraints:number_words", {"relation": "at least", "num_words": 5}, "one two three four five", "too few"),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3}, "One. Two.", FOUR_SENTENCES),
    ("detectable_format:json_format", {}, '{"answer": 42}', "answer: 42"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* only one"),
    ("keywords:existence", {"keywords": ["banana"]}, "I like banana bread.", "I like bread."),
    ("startend:end_checker", {"end_phrase": "Is there anything else?"}, "Done. Is there anything else?", "Done."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\nP.S. bye", "Hi. Bye."),
    ("language:response_language", {"language": "en"}, "This answer is written in English.", "Ceci est en français."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "Say hi. Hi!", "Hi!"),
]


@pytest.mark.parametrize(("instruction", "kwargs", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_each_checker_family_accepts_a_following_answer_and_rejects_one_that_is_not(instruction, kwargs, good, bad):
    prompt = kwargs.get("prompt_to_repeat", "Write something.")
    case = item(instruction, prompt, **kwargs)
    assert follows(case, good) == ([True], [True])
    assert follows(case, bad)[0] == [False]


def test_loose_accepts_what_strict_refuses_after_markup_is_stripped():
    case = item("startend:end_checker", end_phrase="Is there anything else?")
    assert follows(case, "Done. Is there anything else?**") == ([False], [True])


GUARDED = """
import json, sys
from alignflow.evaluation.ifeval import IFEvalItem, follows
limit = {"relation": "less than", "num_sentences": 3}
case = IFEvalItem(1, "Write.", ("length_constraints:number_sentences",), (limit,))
four = "The sky is blue. Grass is green. Snow is white. Coal is black."
print(json.dumps([follows(case, "Mr. Smith went home. He slept.")[0], follows(case, four)[0]]))
"""


def test_sentence_checks_run_offline_from_the_shipped_punkt_model_under_the_network_guard(tmp_path):
    """A fresh HOME and no NLTK_DATA: NLTK finds no data of its own, and lm-eval would download punkt_tab."""
    log = tmp_path / "network.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k != "NLTK_DATA"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT / "tests/network_guard"), ALIGNFLOW_NETWORK_LOG=str(log))
    result = subprocess.run([sys.executable, "-c", GUARDED], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[True], [False]]  # "Mr." does not end a sentence
    assert log.read_text() == ""
    assert not (tmp_path / "nltk_data").exists()


def test_metrics_give_the_paper_s_four_accuracies_groups_and_the_cut_share():
    items = [
        IFEvalItem(1, "p", ("punctuation:no_comma", "keywords:existence"), ({}, {"keywords": ["x"]})),
        IFEvalItem(2, "p", ("punctuation:no_comma",), ({},)),
    ]
    verdicts = Verdicts(strict=[[True, False], [True]], loose=[[True, True], [True]], finished=[True, False])
    metrics = ifeval_metrics(items, verdicts, "m")
    assert metrics["ifeval_prompt_strict_m"] == 0.5 and metrics["ifeval_prompt_loose_m"] == 1.0
    assert metrics["ifeval_inst_strict_m"] == round(2 / 3, 4) and metrics["ifeval_inst_loose_m"] == 1.0
    assert metrics["ifeval_average_strict_m"] == round((0.5 + 2 / 3) / 2, 4)
    assert metrics["ifeval_average_strict_m_ci_low"] <= metrics["ifeval_average_strict_m"]
    assert metrics["ifeval_average_strict_m"] <= metrics["ifeval_average_strict_m_ci_high"] <= 1
    assert metrics["ifeval_group_punctuation_m"] == 1.0 and metrics["ifeval_group_keywords_m"] == 0.0
    assert metrics["ifeval_unfinished_m"] == 0.5 and metrics["ifeval_prompts_m"] == 2


def verdicts(passed: list[bool]) -> Verdicts:
    return Verdicts([[p] for p in passed], [[p] for p in passed], [True] * len(passed))


def test_the_paired_difference_is_per_prompt_with_an_interval_that_excludes_zero_only_when_it_should():
    baseline = [i % 4 == 0 for i in range(200)]
    better = [b or i % 4 == 1 for i, b in enumerate(baseline)]  # wins 50 prompts, loses none
    diff = paired_difference(verdicts(better), verdicts(baseline), "a_b", seed=0)
    assert diff["ifeval_diff_a_b"] == 0.25
    assert 0 < diff["ifeval_diff_a_b_ci_low"] < 0.25 < diff["ifeval_diff_a_b_ci_high"]
    same = paired_difference(verdicts(baseline), verdicts(baseline), "a_b", seed=0)
    assert (same["ifeval_diff_a_b_ci_low"], same["ifeval_diff_a_b_ci_high"]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference(verdicts(better), verdicts(baseline[:10]), "a_b", seed=0)


BAD_RECORDS = [
    (
        {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_dots"], "kwargs": [{}]},
        "instruction_id_list[0]: unknown instruction id 'punctuation:no_dots'",
    ),
    (
        {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]},
        "kwargs: 2 kwargs objects for 1 instruction ids",
    ),
    (
        {"key": 1, "prompt": "p", "instruction_id_list": ["keywords:existence"], "kwargs": [{"num_words": 3}]},
        "kwargs[0]: does not fit checker 'keywords:existence'",
    ),
    ({"key": "one", "prompt": "p", "instruction_id_list": [], "kwargs": []}, "key: expected an integer"),
    ({"key": 1, "prompt": "p", "kwargs": []}, "instruction_id_list: missing"),
]


@pytest.mark.parametrize(("record", "message"), BAD_RECORDS, ids=[m.split(":")[0] for _, m in BAD_RECORDS])
def test_a_bad_record_is_one_line_naming_file_line_and_field(tmp_path, record, message):
    good = {"key": 0, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    path = tmp_path / "ifeval.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as error:
        read_ifeval(path)
    assert str(error.value).startswith(f"{path}:2: {message}")
    assert "\n" not in str(error.value)


def test_the_shipped_file_is_the_paper_s_541_prompts_with_its_license_and_provenance():
    source = (SHIPPED.parent / "SOURCE.md").read_text()
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() in source
    assert "Apache License" in (SHIPPED.parent / "LICENSE").read_text()
    items = read_ifeval(SHIPPED)
    assert len(items) == 541 and len({i.key for i in items}) == 541
    subset = seeded_subset(items, 64, seed=42)
    assert len(subset) == 64 and subset == seeded_subset(items, 64, seed=42) != seeded_subset(items, 64, seed=1)
    positions = [items.index(i) for i in subset]
    assert positions == sorted(positions)  # file order


def test_parse_item_refuses_a_record_that_is_not_an_object():
    with pytest.raises(DataError, match=r"f.jsonl:3: record: expected a JSON object"):
        parse_item(["key"], "f.jsonl", 3)


def test_temperature_zero_decodes_the_argmax_at_every_step(tiny_lm):
    from alignflow.rl.sampling import sample

    model, tokenizer = tiny_lm
    prompt = tokenizer("hello there", add_special_tokens=False)["input_ids"]
    drawn = sample(model.eval(), tokenizer, [prompt], stop_id=-1, max_new_tokens=6, temperature=0.0)
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(6):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert drawn.responses[0].tolist() == ids[len(prompt) :]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["benchmark", "--model", "no/such/folder"], "--model no/such/folder: neither a model folder nor"),
        (["benchmark", "--version", "99"], "--model models:/alignflow-policy/99: not found in the registry"),
    ],
)
def test_benchmark_names_a_model_or_version_that_does_not_exist_in_one_line(tmp_path, monkeypatch, arguments, message):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    result = subprocess.run(
        [sys.executable, "-c", "from alignflow.cli import main; main()", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(re.escape(message), errors[0]), result.stderr[-1500:]
