"""The in-place cache gives the logits transformers' own cache gives, through steps, row drops and regrowth."""

import torch
from transformers import DynamicCache

from alignflow.rl import kv_cache
from alignflow.rl.sampling import pad_left, positions


def decode_steps(model, prompts, pad_id, cache, steps=6, drop_after=2):
    """Logits of `steps` greedy steps, the first row leaving the batch after `drop_after` steps."""
    ids, mask = pad_left(prompts, pad_id, "cpu")
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), cache=cache).logits[:, -1]
    seen = [logits]
    for step in range(steps):
        if step == drop_after:
            keep = torch.arange(1, len(prompts))
            cache.batch_select_indices(keep)
            logits, mask = logits[keep], mask[keep]
        mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
        tokens = logits.argmax(-1)[:, None]
        out = model(input_ids=tokens, attention_mask=mask, position_ids=positions(mask)[:, -1:], cache=cache)
        logits = out.logits[:, -1]
        seen.append(logits)
    return seen


@torch.no_grad()
def test_growing_cache_matches_dynamic_cache_across_row_drops_and_regrowth(tiny_lm, monkeypatch):
    model, tokenizer = tiny_lm
    monkeypatch.setattr(kv_cache, "HEADROOM", 2)  # room runs out twice within the steps
    prompts = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in ("the cat", "a dog sat", "why")]
    expected = decode_steps(model, prompts, tokenizer.pad_token_id, DynamicCache(config=model.config))
    got = decode_steps(model, prompts, tokenizer.pad_token_id, kv_cache.growing_cache(model.config))
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want)


@torch.no_grad()
def test_a_decoding_step_writes_into_the_cache_without_copying_it(tiny_lm):
    model, tokenizer = tiny_lm
    ids, mask = pad_left([tokenizer("the cat", add_special_tokens=False)["input_ids"]], tokenizer.pad_token_id, "cpu")
    cache = kv_cache.growing_cache(model.config)
    model(input_ids=ids, attention_mask=mask, cache=cache)
    storage = cache.layers[0].keys.untyped_storage().data_ptr()
    for _ in range(3):
        mask = torch.cat([mask, mask.new_ones(1, 1)], dim=1)
        model(input_ids=ids[:, -1:], attention_mask=mask, position_ids=positions(mask)[:, -1:], cache=cache)
    assert cache.layers[0].keys.shape[-2] == ids.shape[1] + 3
    assert cache.layers[0].keys.untyped_storage().data_ptr() == storage
