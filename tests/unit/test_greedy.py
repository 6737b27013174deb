"""Greedy decoding with a full batch gives each prompt the answer it gets decoded alone, finished or cut."""

from alignflow.evaluation.greedy import decode_greedy
from alignflow.rl.sampling import sample


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
