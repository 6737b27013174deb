"""Offline methods (TRL's DPO, IPO, KTO, SimPO): each moves its own objective on a tiny model, resumes exactly from a
checkpoint, and refuses data it cannot learn from with one line naming the setting."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import TrainerCallback

from alignflow.config import DPOParams, IPOParams, KTOParams, MarkerParams, SimPOParams
from alignflow.data.formatting import ChatFormat
from alignflow.errors import ConfigError
from alignflow.training.common import last_checkpoint
from alignflow.training.preference import (
    check_training_data,
    merged_policy,
    preference_examples,
    train_preference,
    training_history,
    unpaired_examples,
)
from alignflow.training.sft import SFT_CARD

CHAT = ChatFormat("chat", MarkerParams())
SECTIONS = {"dpo": DPOParams, "ipo": IPOParams, "kto": KTOParams, "simpo": SimPOParams}
QUESTIONS = ["How do I keep basil fresh?", "Why is the sky blue?", "My bike chain squeaks.", "How to learn words?"]
PAIRS = [
    {"prompt": q, "chosen": "Clean it, let it dry, and apply a drop of oil.", "rejected": "No."} for q in QUESTIONS
] * 2


@pytest.fixture(scope="module")
def sft_dir(tiny_lm, tmp_path_factory):
    """A models/sft folder as the sft stage writes it (a full fine-tune: nothing to merge)."""
    lm, tokenizer = tiny_lm
    folder = tmp_path_factory.mktemp("sft")
    lm.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    (folder / SFT_CARD).write_text(json.dumps({"tuning": "full", "needs_adapter": False}))
    return folder


def section(algorithm: str, **overrides):
    values = dict(max_steps=6, learning_rate=5e-3, batch_size=4, save_steps=3, logging_steps=1, mixed_precision="no")
    return SECTIONS[algorithm](**{**values, **overrides})


def completion_logps(model, tokenizer, pairs, side: str) -> torch.Tensor:
    """Summed log-probability of each pair's `side` reply after its chat-rendered prompt."""
    totals = []
    for pair in pairs:
        prompt = CHAT.prompt(tokenizer, pair["prompt"])
        reply = tokenizer(prompt + pair[side] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([reply])).logits[0, :-1].float()
        logps = torch.log_softmax(logits, -1).gather(1, torch.tensor(reply[1:])[:, None])[:, 0]
        totals.append(logps[start - 1 :].sum())
    return torch.stack(totals)


def log_ratio_margin(policy, reference, tokenizer) -> float:
    """Mean [log π/π_ref (chosen)] - [log π/π_ref (rejected)]: what every preference loss pushes up."""
    ratio = {
        side: completion_logps(policy, tokenizer, PAIRS, side) - completion_logps(reference, tokenizer, PAIRS, side)
        for side in ("chosen", "rejected")
    }
    return float((ratio["chosen"] - ratio["rejected"]).mean())


def train(algorithm: str, sft_dir, tokenizer, output_dir, resume_from=None, callbacks=(), **overrides):
    examples = preference_examples(PAIRS, tokenizer, CHAT, tokenizer.eos_token)
    if algorithm == "kto":
        examples = unpaired_examples(examples)
    config = section(algorithm, **overrides)
    return train_preference(algorithm, sft_dir, tokenizer, examples, config, 128, output_dir, 0, resume_from, callbacks)


@pytest.mark.parametrize("method", ["dpo", "ipo", "kto", "simpo"])
def test_each_method_raises_the_chosen_over_rejected_log_ratio_from_zero(method, sft_dir, tiny_lm, tmp_path):
    reference, tokenizer = tiny_lm
    trainer, result = train(method, sft_dir, tokenizer, tmp_path)
    policy = merged_policy(trainer.model).eval()
    assert result.global_step == 6
    assert log_ratio_margin(policy, reference, tokenizer) > 0.5
    history = training_history(trainer.state.log_history)
    assert len(history) == 6 and all("loss" in entry for entry in history)


@pytest.mark.parametrize("method", ["dpo", "simpo"])
def test_the_chosen_nll_term_keeps_the_chosen_answers_more_likely(method, sft_dir, tiny_lm, tmp_path):
    tokenizer = tiny_lm[1]
    likelihood = {}
    for weight in (0.0, 1.0):
        trainer, _ = train(method, sft_dir, tokenizer, tmp_path / str(weight), chosen_nll_weight=weight)
        policy = merged_policy(trainer.model).eval()
        likelihood[weight] = float(completion_logps(policy, tokenizer, PAIRS, "chosen").mean())
    assert likelihood[1.0] > likelihood[0.0] + 0.2  # nats per answer, over 6 steps


@pytest.mark.parametrize("method, weight", [("kto", 1.0), ("dpo", -0.5)])
def test_a_chosen_nll_weight_a_method_cannot_use_is_one_line(method, weight):
    with pytest.raises(ConfigError, match=f"^{method}.chosen_nll_weight: must be 0 for kto and at least 0"):
        section(method, chosen_nll_weight=weight)


def test_lora_trains_only_the_adapter_and_merges_into_a_plain_model(sft_dir, tiny_lm, tmp_path):
    reference, tokenizer = tiny_lm
    trainer, _ = train("dpo", sft_dir, tokenizer, tmp_path, tuning="lora")
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    merged = merged_policy(trainer.model)
    assert set(merged.state_dict()) == set(reference.state_dict())
    assert log_ratio_margin(merged.eval(), reference, tokenizer) > 0


def test_a_run_resumed_from_its_checkpoint_ends_with_the_uninterrupted_weights(sft_dir, tiny_lm, tmp_path):
    tokenizer = tiny_lm[1]
    whole, _ = train("dpo", sft_dir, tokenizer, tmp_path / "whole")
    train("dpo", sft_dir, tokenizer, tmp_path / "cut", max_steps=6, save_steps=3)
    shutil.rmtree(tmp_path / "cut" / "checkpoint-6")  # as if killed after step 3's checkpoint
    checkpoint = last_checkpoint(tmp_path / "cut")
    assert checkpoint.endswith("checkpoint-3")
    steps_run: list[int] = []

    class StepsRun(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps_run.append(state.global_step)

    resumed, result = train("dpo", sft_dir, tokenizer, tmp_path / "cut", checkpoint, [StepsRun()])
    assert result.global_step == 6 and steps_run == [4, 5, 6]  # resumed, not retrained from step 0
    expected, got = merged_policy(whole.model).state_dict(), merged_policy(resumed.model).state_dict()
    assert max(float((expected[k] - got[k]).abs().max()) for k in expected) < 1e-6


def test_markers_format_ends_each_reply_with_the_stop_marker(tiny_lm):
    tokenizer = tiny_lm[1]
    markers = ChatFormat("markers", MarkerParams())
    (example,) = preference_examples(PAIRS[:1], tokenizer, markers, markers.markers.stop)
    assert example["prompt"].endswith(markers.markers.bot)
    assert example["chosen"] == PAIRS[0]["chosen"] + markers.markers.stop


def test_kto_labels_a_response_by_whether_the_pairs_prefer_it_and_drops_ties():
    pairs = [
        {"prompt": "q", "chosen": "best", "rejected": "middle"},
        {"prompt": "q", "chosen": "best", "rejected": "worst"},
        {"prompt": "q", "chosen": "middle", "rejected": "worst"},
    ]
    labels = {e["completion"]: e["label"] for e in unpaired_examples(pairs)}
    assert labels == {"best": True, "worst": False}  # "middle" is preferred once and rejected once


@pytest.mark.parametrize(
    "method, examples, message",
    [
        ("dpo", [], "align.method: dpo: data/tokenized/reward holds no training comparisons"),
        (
            "kto",
            [{"prompt": "q", "completion": "a", "label": True}],
            "align.method: kto: data/tokenized/reward gives no undesirable responses",
        ),
    ],
)
def test_data_a_method_cannot_learn_from_is_one_line_naming_the_setting(method, examples, message):
    with pytest.raises(ConfigError, match=message):
        check_training_data(method, examples, "data/tokenized/reward")
