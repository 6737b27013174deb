"""Training prompts for instruction following: seeded IFEval-style constraints on the project's own prompts, and a
decontamination check that refuses any prompt overlapping IFEval's test set."""

from pathlib import Path

import pytest

from alignflow.errors import DataError
from alignflow.evaluation.ifeval import checkers
from alignflow.verifiers.checks import constraint_item, ifeval
from alignflow.verifiers.constraints import with_constraints
from alignflow.verifiers.decontamination import benchmark_prompts, check_decontaminated, task_text

ROOT = Path(__file__).resolve().parents[2]
TASKS = [
    {"id": f"p{i}", "prompt": text}
    for i, text in enumerate(
        [
            "How do I keep basil fresh?",
            "Why is the sky blue?",
            "Write a short note to a neighbour about a parcel.",
            "Explain how a bicycle gear works.",
            "Give me a plan for learning vocabulary.",
            "What is a good first plant?",
        ]
        * 5
    )
]


@pytest.fixture(scope="module")
def ifeval_items():
    return benchmark_prompts(ROOT / "data/benchmarks/ifeval/input_data.jsonl")


def test_constraints_are_seeded_valid_and_never_conflict():
    drawn = with_constraints(TASKS, seed=42)
    assert drawn == with_constraints(TASKS, seed=42)
    assert drawn != with_constraints(TASKS, seed=43)
    conflicts = checkers().INSTRUCTION_CONFLICTS
    for task, record in zip(TASKS, drawn):
        ids = [c["instruction_id"] for c in record["constraints"]]
        assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids)
        assert not any(b in conflicts[a] for a in ids for b in ids if a != b)
        assert record["prompt"].startswith(task["prompt"]) and len(record["prompt"]) > len(task["prompt"])
        constraint_item(record)  # the checkers accept every id and argument drawn
        assert ifeval("", record) is not None


def test_excluded_instructions_are_never_drawn():
    drawn = with_constraints(TASKS, seed=0, exclude=["language:response_language", "keywords:existence"])
    ids = {c["instruction_id"] for record in drawn for c in record["constraints"]}
    assert not ids & {"language:response_language", "keywords:existence"}


def test_own_prompts_with_constraints_pass_decontamination(ifeval_items):
    texts = [(line, task_text(r)) for line, r in enumerate(with_constraints(TASKS, seed=42), 1)]
    check_decontaminated(texts, ifeval_items, "prompts.jsonl")


def test_a_phrase_shared_with_an_ifeval_prompt_is_no_leak(ifeval_items):
    """hh-rlhf's record 608 shares "you give me some advice on how to" with IFEval prompt 349, and nothing else."""
    (key, prompt), *_ = [(k, p) for k, p in ifeval_items if "you give me some advice on how to" in p.lower()]
    own = [(1, "Can you give me some advice on how to keep basil fresh on a sunny kitchen counter?")]
    check_decontaminated(own, ifeval_items, "prompts.jsonl")
    half = prompt.split()[: len(prompt.split()) * 2 // 3]  # two thirds of the prompt's words leak
    with pytest.raises(DataError, match=rf"^prompts.jsonl:1: prompt: overlaps IFEval prompt {key} "):
        check_decontaminated([(1, "Tell me: " + " ".join(half))], ifeval_items, "prompts.jsonl")


def test_a_planted_ifeval_prompt_fails_naming_the_line(ifeval_items):
    planted = [*with_constraints(TASKS[:3], seed=42), {"id": "leak", "prompt": "Please: " + ifeval_items[7][1]}]
    texts = [(line, task_text(r)) for line, r in enumerate(planted, 1)]
    with pytest.raises(DataError, match=rf"^prompts.jsonl:4: prompt: overlaps IFEval prompt {ifeval_items[7][0]} "):
        check_decontaminated(texts, ifeval_items, "prompts.jsonl")
