"""Likelihood-based evaluation: held-out LM loss on completion labels, and multiple-choice accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from alignflow.errors import DataError
from alignflow.rl.sampling import response_slice


@torch.no_grad()
def held_out_loss(model, tokenizer, dataset, batch_size: int = 16) -> dict[str, float]:
    """Token-weighted cross-entropy on the labelled (assistant) tokens, and its perplexity. Batches are bounded on
    their own: they hold logits at every position of conversations up to tokenize.max_length long."""
    from alignflow.training.sft import sft_collator

    collate = sft_collator(tokenizer)
    model.eval()
    total, count = 0.0, 0
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in dataset]
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start : start + batch_size])
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * tokens
        count += tokens
    loss = total / max(count, 1)
    return {"loss": round(loss, 4), "perplexity": round(math.exp(min(loss, 50)), 3)}


def read_multiple_choice(path: Path) -> list[dict[str, Any]]:
    """{"id", "question", "choices": [str, ...], "answer": index} per line, validated."""
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, None, f"invalid JSON ({exc.msg})") from None
        if not isinstance(item.get("question"), str) or not item["question"].strip():
            raise DataError(path, number, "question", "expected a non-empty string")
        choices = item.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            raise DataError(path, number, "choices", "expected a list of at least 2 non-empty strings")
        answer = item.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise DataError(
                path, number, "answer", f"expected an index into choices (0-{len(choices) - 1}), found {answer!r}"
            )
        items.append(item)
    if not items:
        raise DataError(path, None, None, "file has no questions")
    return items


@torch.no_grad()
def multiple_choice_accuracy(model, tokenizer, items: list[dict[str, Any]], render_prompt) -> float:
    """Pick the choice with the highest total log-likelihood after the rendered question (as in MMLU-style evals)."""
    model.eval()
    correct = 0
    for item in items:
        prompt_ids = tokenizer(render_prompt(item["question"]), add_special_tokens=False)["input_ids"]
        scores = []
        for choice in item["choices"]:
            choice_ids = tokenizer(choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + choice_ids])
            logprobs = torch.log_softmax(response_slice(model(input_ids=ids).logits, len(prompt_ids))[0].float(), -1)
            scores.append(float(logprobs.gather(-1, torch.tensor(choice_ids).unsqueeze(-1)).sum()))
        correct += int(max(range(len(scores)), key=scores.__getitem__) == item["answer"])
    return round(correct / len(items), 4)
