"""Training switches models to the plain attention kernel on CPU and sampling back to SDPA; both compute the same
function, so a model trained with one is scored and sampled with the other."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model

from alignflow.training.common import sampling_attention, train_with_plain_attention

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="machine: GPUs keep their default attention kernel")


def kernel(model) -> str:
    return model.config._attn_implementation


def test_a_causal_lm_keeps_its_function_padded_and_packed(tiny_lm):
    default, _ = tiny_lm
    switched = train_with_plain_attention(copy.deepcopy(default))
    assert (kernel(default), kernel(switched)) == ("sdpa", "eager")
    ids = torch.randint(0, default.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    padded = {"input_ids": ids, "attention_mask": torch.tensor([[1] * 12, [0] * 4 + [1] * 8])}
    packed = {"input_ids": ids, "position_ids": torch.cat([torch.arange(5), torch.arange(7)]).expand(2, 12)}
    with torch.no_grad():
        for inputs in (padded, packed):
            real = inputs.get("attention_mask", torch.ones_like(ids)).bool()  # padding's outputs are never read
            expected = default(**inputs).logits[real]
            torch.testing.assert_close(switched(**inputs).logits[real], expected, atol=1e-5, rtol=1e-5)


def test_a_peft_model_is_switched_through_its_wrapper(tiny_lm):
    wrapped = get_peft_model(copy.deepcopy(tiny_lm[0]), LoraConfig(r=2, target_modules=["q_proj"]))
    train_with_plain_attention(wrapped)
    assert kernel(wrapped.get_base_model()) == "eager"


def test_sampling_runs_sdpa_and_hands_the_model_back_to_training(tiny_lm):
    model = train_with_plain_attention(copy.deepcopy(tiny_lm[0]))
    with sampling_attention(model) as sampler:
        assert kernel(sampler) == "sdpa"
    assert kernel(model) == "eager"


def test_a_sequence_classifier_keeps_its_scores():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=1
    )
    default = BertForSequenceClassification(config).eval()
    switched = train_with_plain_attention(copy.deepcopy(default))
    assert kernel(switched) == "eager"
    ids = torch.randint(1, 100, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [1] * 2 + [0] * 7])
    with torch.no_grad():
        expected = default(input_ids=ids, attention_mask=mask).logits
        torch.testing.assert_close(switched(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5, rtol=1e-5)
