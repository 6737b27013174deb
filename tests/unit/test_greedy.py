"""Greedy decoding with a full batch gives each prompt the answer it gets decoded alone, finished or cut."""

import torch

from alignflow.evaluation.greedy import _join, decode_greedy
from alignflow.rl.sampling import positions, prefill, sample


def alone(model, tokenizer, prompt, stop_id, limit):
    drawn = sample(model, tokenizer, [prompt], stop_id, limit, temperature=0.0)
    finished = bool(drawn.finished[0])
    return drawn.responses[0][: int(drawn.mask[0].sum()) - finished].tolist(), finished


def test_rows_refilled_mid_decoding_answer_as_each_prompt_does_alone(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = [tokenizer(f"the {i} cat" + " sat" * (i % 5), add_special_tokens=False)["input_ids"] for i in range(12)]
    free_running, _ = alone(model, tokenizer, prompts[0], -1, 8)
    stop_id = free_running[3]  # a token the model does emit, so some answers finish and free their rows
    answers, finished = decode_greedy(model, prompts, stop_id, tokenizer.pad_token_id, 24, width=4)
    expected = [alone(model, tokenizer, prompt, stop_id, 24) for prompt in prompts]
    assert list(zip(answers, finished)) == expected
    assert any(finished) and not all(finished)


@torch.no_grad()
def test_a_joined_batch_continues_every_row_as_its_own_batch_does(tiny_lm):
    """Rows of different lengths joined mid-decoding: the next step's logits are each row's logits alone."""
    model, tokenizer = tiny_lm
    short = [tokenizer("why", add_special_tokens=False)["input_ids"]]
    long = [tokenizer("the cat sat on the mat", add_special_tokens=False)["input_ids"]]

    def step(prompts):
        _, mask, cache, logits = prefill(model, prompts, tokenizer.pad_token_id, "cpu")
        return cache, mask, logits.argmax(-1)

    def next_logits(cache, mask, tokens):
        mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions(mask)[:, -1:], cache=cache)
        return out.logits[:, -1]

    alone = [next_logits(*step(prompts)) for prompts in (long, short)]
    (long_cache, long_mask, long_tokens), (short_cache, short_mask, short_tokens) = step(long), step(short)
    cache, mask = _join(long_cache, long_mask, short_cache, short_mask)
    joined = next_logits(cache, mask, torch.cat([long_tokens, short_tokens]))
    torch.testing.assert_close(joined, torch.cat(alone))
