"""Rejection-sampling pairs: the verifiers rank a prompt's sampled answers, the reward model breaks their ties."""

from __future__ import annotations

import torch

from alignflow.config import SampledPairsParams, VerifierParams
from alignflow.training.sampled_pairs import ranked_pair, sampled_pairs


def test_the_verifiers_rank_first_and_the_reward_model_breaks_their_ties():
    texts = ["a", "b", "c"]
    assert ranked_pair(texts, [1.0, 0.0, 0.5], [-5.0, 9.0, 0.0]) == (0, 1)  # verifiers outrank the reward model
    assert ranked_pair(texts, [1.0, 1.0, 1.0], [0.2, 0.9, -0.3]) == (1, 2)  # a tie goes to the reward model
    assert ranked_pair(texts, [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]) is None  # nothing tells them apart
    assert ranked_pair(["same", "same"], [1.0, 0.0], [0.0, 0.0]) is None  # one answer twice teaches nothing
    assert ranked_pair(texts, [1.0, 0.0, 0.5], [0.0, 0.0, 0.0], [False, True, True]) == (2, 0)  # cut off ranks last


def test_pairs_decided_by_the_verifiers_have_a_finished_chosen_answer_that_scores_higher():
    texts = ["a", "b", "c"]
    only = {"decided_by": "verifiers"}
    # a finished answer that fails every rule no longer beats a cut one that passes them
    assert ranked_pair(texts, [1.0, 0.0, 0.5], [0.0, 0.0, 0.0], [False, True, True], **only) == (2, 1)
    assert ranked_pair(texts, [1.0, 1.0, 1.0], [0.2, 0.9, -0.3], **only) is None  # the reward model never decides
    assert ranked_pair(texts, [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [False, True, True], **only) is None  # best is cut
    assert ranked_pair(texts, [0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [True, True, False], **only) == (0, 2)


def test_with_rejected_finished_a_pair_never_sets_a_cut_answer_against_a_finished_one():
    texts = ["a", "b", "c"]
    cut_last = [True, True, False]
    # the cut answer fails the rules most, but the worst finished answer is the rejected one
    assert ranked_pair(texts, [1.0, 0.5, 0.0], [0.0, 0.0, 0.0], cut_last, "verifiers", rejected_finished=True) == (0, 1)
    assert ranked_pair(texts, [1.0, 0.5, 0.0], [0.0, 0.0, 0.0], cut_last, "any", rejected_finished=True) == (0, 1)
    # the finished answers tie on the rules: no pair, though the cut one scores lower
    assert ranked_pair(texts, [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], cut_last, "verifiers", rejected_finished=True) is None
    one_finished = [True, False, False]
    assert ranked_pair(texts, [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], one_finished, "any", rejected_finished=True) is None


def test_sampled_pairs_prefer_what_the_verifier_passes(tiny_lm):
    lm, tokenizer = tiny_lm
    questions = ["How do I keep basil?", "Why is the sky blue?", "My bike squeaks.", "How can I learn words?"]
    rows = [
        {
            "prompt": question,
            "input_ids": tokenizer(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
                )
            )["input_ids"],
        }
        for question in questions
    ]
    config = SampledPairsParams(
        verifiers=(VerifierParams("regex", options={"pattern": "th"}),), samples_per_prompt=6, max_new_tokens=12
    )

    def shorter_is_better(prompts, responses):  # a fixed scorer in the reward model's slot, for the ties
        return torch.tensor([-float(len(r)) for r in responses])

    stop_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pairs, stats = sampled_pairs(lm, tokenizer, rows, shorter_is_better, config, stop_id, seed=0, where="dpo")
    assert pairs and stats["sampled_pairs"] == len(pairs) and stats["sampled_prompts"] == len(questions)
    assert 0 < stats["sampled_verifier_regex"] < 1
    decided = 0
    for pair in pairs:
        chosen, rejected = ("th" in pair[side] for side in ("chosen", "rejected"))
        assert chosen >= rejected
        if chosen > rejected:
            decided += 1
        else:  # the verifier tied: the reward model's order decides
            assert len(pair["chosen"]) <= len(pair["rejected"])
    assert decided == stats["pairs_decided_by_verifiers"]
    again, _ = sampled_pairs(lm, tokenizer, rows, shorter_is_better, config, stop_id, seed=0, where="dpo")
    assert again == pairs  # seeded: a rerun samples the same pairs
