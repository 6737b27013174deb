"""Packed SFT batches: every example once and whole, rows no longer than the longest example, the same loss and
gradients as padded rows, and padding where a model's attention would let packed examples see each other."""

from __future__ import annotations

import random

import pytest
import torch

from alignflow.config import SFTParams
from alignflow.training.packing import PackedCollator, pack_rows, packs_correctly
from alignflow.training.sft import sft_collator, training_collator


def features(lengths: list[int], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for number, length in enumerate(lengths):
        ids = [rng.randrange(5, 100) for _ in range(length)]
        # half the examples labelled from their first token: packing must not train the token before to predict it
        rows.append({"input_ids": ids, "labels": [-100] * 3 + ids[3:] if number % 2 else ids})
    return rows


def test_rows_hold_every_example_once_and_no_row_outgrows_the_longest():
    lengths = [12, 30, 7, 22, 9, 16, 5, 28]
    rows = pack_rows(lengths, max(lengths))
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max(lengths) for row in rows)
    assert len(rows) == 5  # 30 | 28 | 22+7 | 16+12 | 9+5


def test_a_packed_batch_gives_the_padded_batch_s_loss_and_gradients_on_fewer_positions(tiny_lm):
    model, tokenizer = tiny_lm
    batch = features([12, 30, 7, 22, 9, 16, 5, 28])
    padded = sft_collator(tokenizer)([dict(f) for f in batch])
    packed = PackedCollator(tokenizer.pad_token_id)(batch)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    assert "attention_mask" not in packed

    was_training = model.training
    model.eval()  # no dropout: the two layouts must see the same arithmetic
    gradients = []
    for inputs in (padded, packed):
        model.zero_grad()
        loss = model(**inputs).loss
        loss.backward()
        gradients.append((float(loss), [p.grad.clone() for p in model.parameters()]))
    (loss_padded, grads_padded), (loss_packed, grads_packed) = gradients
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_padded, grads_packed))
    model.zero_grad()
    model.train(was_training)


def test_models_whose_attention_mixes_packed_examples_get_padded_batches(tiny_lm):
    from transformers import OPTConfig, OPTForCausalLM

    llama, tokenizer = tiny_lm
    opt = OPTForCausalLM(
        OPTConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, ffn_dim=64, word_embed_proj_dim=32)
    )  # learned positions counted from the attention mask, blind to position-id restarts
    assert packs_correctly(llama) and not packs_correctly(opt)
    params = SFTParams()
    assert isinstance(training_collator(llama, tokenizer, params), PackedCollator)
    assert not isinstance(training_collator(opt, tokenizer, params), PackedCollator)
    assert not isinstance(training_collator(llama, tokenizer, SFTParams(packing=False)), PackedCollator)
    assert not isinstance(training_collator(llama, tokenizer, SFTParams(tuning="prompt_tuning")), PackedCollator)
