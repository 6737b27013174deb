"""Evaluation in two stages: SFT's half saved by the baseline stage and the policy's half added by evaluate give
exactly the rows and metrics of one pass over both; a saved baseline made for other prompts is refused."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from alignflow.config import EvaluateParams
from alignflow.errors import StageInputError
from alignflow.evaluation.suite import (
    baseline_batches,
    baseline_record,
    baseline_rows,
    evaluate_batches,
    evaluation_batches,
    policy_batches,
    summarise,
)

CONFIG = EvaluateParams(max_new_tokens=6, temperature=1.0, top_p=0.9, batch_size=2, best_of_n=3, best_of_n_prompts=3)


def length_score(prompts, responses) -> torch.Tensor:
    return torch.tensor([float(len(r) % 5) for r in responses])


def word_score(prompts, responses) -> torch.Tensor:
    return torch.tensor([float(len(r.split())) - 0.1 * len(p) for p, r in zip(prompts, responses)])


@pytest.fixture
def setup(tiny_lm):
    lm, tokenizer = tiny_lm
    sft, policy = copy.deepcopy(lm).eval(), copy.deepcopy(lm).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    questions = ["How do I keep basil fresh?", "Why does my bike squeak?", "Tea or coffee?", "What is rain?", "Hi"]
    prompts = [{"id": f"p{i}", "prompt": q, "input_ids": tokenizer(q)["input_ids"]} for i, q in enumerate(questions)]
    scorers = {"reward": length_score, "judge": word_score}
    return sft, policy, tokenizer, prompts, scorers


def test_the_saved_baseline_plus_the_policy_equals_one_pass(setup):
    sft, policy, tokenizer, prompts, scorers = setup
    batches, stop = evaluation_batches(prompts, CONFIG), tokenizer.eos_token_id
    together = evaluate_batches(sft, policy, tokenizer, prompts, scorers, stop, CONFIG, 7, batches)

    saved = json.loads(
        json.dumps(
            baseline_record(prompts, baseline_batches(sft, tokenizer, prompts, scorers, stop, CONFIG, 7, batches), {})
        )
    )
    baseline = baseline_rows(saved, prompts, "data/baseline.json")
    apart = policy_batches(policy, sft, tokenizer, prompts, scorers, stop, CONFIG, 7, batches, baseline)
    assert apart == together
    assert summarise(apart, CONFIG, 7).metrics == summarise(together, CONFIG, 7).metrics
    assert sum("bon" in row.texts for row in apart.values()) == 3


def test_a_baseline_for_other_prompts_or_with_a_missing_row_is_refused(setup):
    sft, _, tokenizer, prompts, scorers = setup
    batches = evaluation_batches(prompts, CONFIG)
    rows = baseline_batches(sft, tokenizer, prompts, scorers, tokenizer.eos_token_id, CONFIG, 7, batches)
    record = json.loads(json.dumps(baseline_record(prompts, rows, {})))
    with pytest.raises(StageInputError, match=r"^data/baseline.json: prompt_ids: made for other evaluation prompts"):
        baseline_rows(record, prompts[:-1], "data/baseline.json")
    del record["rows"]["2"]
    with pytest.raises(StageInputError, match=r"^data/baseline.json: rows: no row for prompt 2 \(1 missing\)"):
        baseline_rows(record, prompts, "data/baseline.json")
    record["rows"]["2"] = {"texts": "not a result"}
    with pytest.raises(StageInputError, match=r"^data/baseline.json: rows.2: not a saved prompt result"):
        baseline_rows(record, prompts, "data/baseline.json")


def test_the_policy_samples_each_prompt_with_the_seed_sft_sampled_it_with(setup):
    """A policy identical to SFT, evaluated against the saved baseline, writes SFT's very responses (KL 0)."""
    sft, _, tokenizer, prompts, scorers = setup
    batches, stop = evaluation_batches(prompts, CONFIG), tokenizer.eos_token_id
    baseline = baseline_batches(sft, tokenizer, prompts, scorers, stop, CONFIG, 7, batches)
    rows = policy_batches(copy.deepcopy(sft), sft, tokenizer, prompts, scorers, stop, CONFIG, 7, batches, baseline)
    assert all(row.texts["policy"] == row.texts["sft"] and abs(row.kl) < 1e-6 for row in rows.values())
    assert len({row.texts["sft"] for row in rows.values()}) > 1  # the prompts did get different responses
