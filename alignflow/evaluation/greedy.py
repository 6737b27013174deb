"""Greedy decoding that keeps its batch full: when an answer ends, the next prompt takes its row.

Benchmarks decode greedily up to a long limit (IFEval: 1280 tokens), and a small model loops on some prompts until
that limit while most answers end in a few hundred tokens. Decoding prompts in fixed batches then spends most of its
time on a handful of rows, while a decoding step costs about the same for 4 rows as for 64 on a CPU (it reads every
weight either way). Here new prompts join the running batch whenever half of it has finished, their key-value cache
left-padded to the batch's length; the answers are those of decoding each prompt alone (`bench/greedy_refill.py`
measures the speed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from alignflow.progress import progress
from alignflow.rl.sampling import positions, prefill


def _pad_cache_left(cache: DynamicCache, length: int) -> None:
    for layer in cache.layers:
        missing = length - layer.keys.shape[-2]
        if missing:
            layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, missing, 0))
            layer.values = torch.nn.functional.pad(layer.values, (0, 0, missing, 0))


def _join(cache: DynamicCache, mask: torch.Tensor, other: DynamicCache, other_mask: torch.Tensor):
    """One cache and mask holding both batches' rows, the shorter left-padded (masked out) to the longer."""
    length = max(mask.shape[1], other_mask.shape[1])
    for each in (cache, other):
        _pad_cache_left(each, length)
    for layer, extra in zip(cache.layers, other.layers):
        layer.keys = torch.cat([layer.keys, extra.keys])
        layer.values = torch.cat([layer.values, extra.values])
    pad = [torch.nn.functional.pad(m, (length - m.shape[1], 0)) for m in (mask, other_mask)]
    return cache, torch.cat(pad)


def _drop_leading_padding(cache: DynamicCache, mask: torch.Tensor) -> torch.Tensor:
    """Cut the columns that are padding in every remaining row (left by rows that finished)."""
    first = int(mask.any(0).nonzero()[0])
    if first:
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
    return mask[:, first:]


@torch.no_grad()
def decode_greedy(
    lm, prompts: Sequence[Sequence[int]], stop_id: int, pad_id: int, max_new_tokens: int, width: int
) -> tuple[list[list[int]], list[bool]]:
    """(answer tokens without the stop token, whether it ended with the stop token) per prompt, in prompt order."""
    lm.eval()
    device = next(lm.parameters()).device
    waiting = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
    answers: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    rows: list[int] = []
    cache, mask, tokens = None, None, None
    while waiting or rows:
        if waiting and len(rows) <= width // 2:
            joining = [waiting.popleft() for _ in range(min(width - len(rows), len(waiting)))]
            _, joining_mask, joining_cache, logits = prefill(lm, [prompts[i] for i in joining], pad_id, device)
            first_tokens = logits.argmax(-1)
            if cache is None:
                cache, mask, tokens = joining_cache, joining_mask, first_tokens
            else:
                cache, mask = _join(cache, mask, joining_cache, joining_mask)
                tokens = torch.cat([tokens, first_tokens])
            rows += joining
        keep = []
        for row, (index, token) in enumerate(zip(rows, tokens.tolist())):
            if token == stop_id:
                finished[index] = True
                continue
            answers[index].append(token)
            if len(answers[index]) < max_new_tokens:
                keep.append(row)
        if len(keep) < len(rows):
            done = len(prompts) - len(waiting) - len(keep)
            progress(f"greedy decoding: {done}/{len(prompts)} answers done")
            if not keep:
                rows, cache, mask, tokens = [], None, None, None
                continue
            selected = torch.tensor(keep, device=device)
            cache.batch_select_indices(selected)
            rows, mask, tokens = [rows[r] for r in keep], mask[selected], tokens[selected]
            mask = _drop_leading_padding(cache, mask)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        tokens = (
            lm(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=positions(mask)[:, -1:],
                cache=cache,
                use_cache=True,
            )
            .logits[:, -1]
            .argmax(-1)
        )
    return answers, finished
