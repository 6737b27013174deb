"""SFT's loss with the LM head only at labelled positions equals transformers' causal-LM loss, gradients included,
on packed rows, with or without a LoRA adapter, and trains to the same weights."""

from __future__ import annotations

import copy

import pytest
import torch

from alignflow.training.label_loss import labelled_loss
from alignflow.training.packing import PackedCollator

REPLIES = [("Keep basil in water.", "On the counter, like flowers."), ("Why is the sky blue?", "Light scatters.")]


def examples(tokenizer) -> list[dict]:
    """Prompt tokens unlabelled, reply tokens labelled, as tokenize writes SFT rows."""
    rows = []
    for prompt, reply in REPLIES * 3:
        prompt_ids, reply_ids = tokenizer(prompt)["input_ids"], tokenizer(" " + reply)["input_ids"]
        rows.append({"input_ids": prompt_ids + reply_ids, "labels": [-100] * len(prompt_ids) + reply_ids})
    return rows


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("adapter", [False, True], ids=["full", "lora"])
def test_the_loss_and_its_gradients_equal_the_models_own(tiny_lm, adapter):
    from peft import LoraConfig, get_peft_model

    lm, tokenizer = tiny_lm
    model = copy.deepcopy(lm).train()
    if adapter:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    batch = PackedCollator(tokenizer.pad_token_id)(examples(tokenizer))
    for count in (None, 40):  # the Trainer's label count across accumulation steps, or none
        model.zero_grad()
        expected = model(**batch, num_items_in_batch=count).loss
        expected.backward()
        expected_grads = gradients(model)
        model.zero_grad()
        loss, _ = labelled_loss(model, batch, count)
        loss.backward()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        grads = gradients(model)
        assert grads.keys() == expected_grads.keys()
        assert all(torch.allclose(grads[k], expected_grads[k], atol=1e-6, rtol=1e-4) for k in grads)


def test_a_trainer_run_ends_at_the_same_weights(tiny_lm, tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from alignflow.training.label_loss import LabelledPositionsTrainer

    lm, tokenizer = tiny_lm
    data = Dataset.from_list(examples(tokenizer))
    weights = []
    for trainer_class in (Trainer, LabelledPositionsTrainer):
        args = TrainingArguments(
            str(tmp_path / trainer_class.__name__),
            max_steps=3,
            per_device_train_batch_size=3,
            gradient_accumulation_steps=2,
            learning_rate=1e-3,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            seed=0,
            data_seed=0,
            logging_steps=1,
            remove_unused_columns=False,
        )
        model = copy.deepcopy(lm)
        trainer_class(
            model=model, args=args, train_dataset=data, data_collator=PackedCollator(tokenizer.pad_token_id)
        ).train()
        weights.append(model.state_dict())
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-5) for k in weights[0])
    assert any(not torch.equal(weights[0][k], lm.state_dict()[k]) for k in weights[0])  # it did train
