"""Scoring packed samples gives the log-probs of the padded rows they were sampled in: rows are shared where the
lengths allow, a subset of samples keeps its own order, and a model whose logits are not its head's plain output
(soft-capped) is scored from its own logits."""

import dataclasses

import pytest
import torch

from alignflow.rl.packed import layout_of, pack_samples, sequence_logprobs, token_outputs
from alignflow.rl.sampling import positions, response_logprobs, sample


def padded_logprobs(lm, drawn, temperature=1.0):
    """The log-probs as the padded rows give them: left-padded prompts, every response position."""
    logits = lm(
        input_ids=drawn.sequences, attention_mask=drawn.attention_mask, position_ids=positions(drawn.attention_mask)
    ).logits[:, drawn.query_length - 1 : -1]
    return response_logprobs(logits, drawn.responses, temperature) * drawn.mask


def drawn_batch(lm, tokenizer, seed=0):
    """Six samples of prompts of different lengths, some cut, some stopped early."""
    torch.manual_seed(seed)
    prompts = [list(torch.randint(3, len(tokenizer), (n,))) for n in (2, 3, 18, 4, 5, 3)]
    stop_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        return sample(lm, tokenizer, [[int(t) for t in p] for p in prompts], stop_id, max_new_tokens=10)


def test_packed_log_probs_equal_those_of_the_padded_rows_and_rows_are_shared(tiny_lm):
    lm, tokenizer = tiny_lm
    drawn = drawn_batch(lm.eval(), tokenizer)
    batch = pack_samples(drawn)
    assert len(batch.input_ids) < len(drawn.sequences)
    assert batch.input_ids.numel() < drawn.sequences.numel()
    with torch.no_grad():
        expected = padded_logprobs(lm, drawn, temperature=0.7)
        got = sequence_logprobs(lm, drawn, temperature=0.7)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_subset_of_samples_keeps_its_order(tiny_lm):
    lm, tokenizer = tiny_lm
    drawn = drawn_batch(lm.eval(), tokenizer, seed=1)
    rows = torch.tensor([4, 1, 3])
    layout = layout_of(lm)
    batch = pack_samples(drawn, rows, layout.share_rows)
    with torch.no_grad():
        logits, _ = token_outputs(lm, batch, layout)
        got = batch.scatter(response_logprobs(logits, batch.tokens))
        expected = padded_logprobs(lm, drawn)[rows]
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("share_rows", [True, False])
def test_a_soft_capped_head_is_scored_from_the_model_s_own_logits(tiny_lm, share_rows):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    _, tokenizer = tiny_lm
    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        final_logit_softcapping=1.0,  # tight, so the plain head's logits would be far off
        pad_token_id=tokenizer.pad_token_id,
    )
    lm = Gemma2ForCausalLM(config).eval()
    layout = layout_of(lm)
    assert not layout.head_on_tokens
    drawn = drawn_batch(lm, tokenizer)
    layout = dataclasses.replace(layout, share_rows=share_rows)
    with torch.no_grad():
        expected = padded_logprobs(lm, drawn)
        got = sequence_logprobs(lm, drawn, layout=layout)
    assert torch.allclose(got, expected, atol=1e-5)
