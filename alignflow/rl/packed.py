"""Scoring sampled responses without padding: the real tokens of each sample (its prompt without left padding, its
response up to the stop token) share rows, and the LM head runs only where a response token is predicted.

A PPO batch laid out as sampled is left-padded to its longest prompt and right-padded to its longest response, so
much of it, logit rows included, is padding. Packed, the policy's forward and backward pass and the reference's
forward pass compute real tokens only, and run faster (`bench/ppo_packing.py` measures the real share and the
speedup on the default models) for the same per-token log-probs up to rounding: position ids restart at 0 for every
sample, so each token attends to what it attended to in its padded row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from alignflow.rl.sampling import Samples, response_logprobs
from alignflow.training.packing import pack_rows, packs_correctly


@dataclass(frozen=True)
class Layout:
    """How a model's samples may be laid out, found by checking the model once (`layout_of`)."""

    share_rows: bool
    """The model keeps samples packed into one row apart (its attention reads position-id restarts)."""
    head_on_tokens: bool
    """The model's logits are its output embedding applied to its last hidden state (no soft-capping or scaling
    after it), so the head can run on the response positions alone."""


def layout_of(lm: nn.Module) -> Layout:
    return Layout(packs_correctly(lm), head_is_plain(lm))


def head_is_plain(lm: nn.Module) -> bool:
    """Whether `lm`'s logits equal its output embedding applied to its last hidden state."""
    vocab = lm.get_input_embeddings().num_embeddings
    ids = torch.randint(0, vocab, (1, 6), generator=torch.Generator().manual_seed(0))
    ids = ids.to(next(lm.parameters()).device)
    was_training = lm.training
    lm.eval()
    try:
        with torch.no_grad():
            out = lm(input_ids=ids, output_hidden_states=True, use_cache=False)
            head = lm.get_output_embeddings()(out.hidden_states[-1])
    finally:
        lm.train(was_training)
    return bool(torch.allclose(head.float(), out.logits.float(), atol=1e-4, rtol=1e-3))


@dataclass(frozen=True)
class PackedBatch:
    """Samples' real tokens in rows, and where each response token is predicted and where its result belongs."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    source: tuple[torch.Tensor, torch.Tensor]
    """(row, column) of each position whose output predicts a response token, sample by sample."""
    target: tuple[torch.Tensor, torch.Tensor]
    """(sample, response index) of that token, in the same order."""
    tokens: torch.Tensor
    """The response tokens predicted there."""
    shape: tuple[int, int]
    """(samples, response length) of the per-token tensors `scatter` returns."""

    def scatter(self, values: torch.Tensor) -> torch.Tensor:
        """Per-token `values` (one per response token) laid out as (samples, response length), zero elsewhere;
        differentiable."""
        return values.new_zeros(self.shape).index_put(self.target, values)


def pack_samples(samples: Samples, rows: torch.Tensor | None = None, share_rows: bool = True) -> PackedBatch:
    """Pack `samples` (or the `rows` of them) first-fit decreasing into rows as long as the longest sample; with
    `share_rows` off, one sample per row, right-padded (a causal model never attends to what follows)."""
    rows = torch.arange(len(samples.sequences)) if rows is None else rows
    start = samples.query_length
    prompt_lengths = samples.attention_mask[rows, :start].sum(1).tolist()
    response_lengths = samples.mask[rows].sum(1).long().tolist()
    lengths = [p + r for p, r in zip(prompt_lengths, response_lengths)]
    width = max(lengths)
    layout = pack_rows(lengths, width) if share_rows else [[i] for i in range(len(lengths))]
    input_ids = torch.zeros(len(layout), width, dtype=torch.long)
    position_ids = torch.zeros_like(input_ids)
    source_rows, source_columns, target_rows, target_columns = [], [], [], []
    for packed_row, members in enumerate(layout):
        at = 0
        for i in members:
            prompt, response = prompt_lengths[i], response_lengths[i]
            sequence = samples.sequences[int(rows[i])]
            input_ids[packed_row, at : at + prompt + response] = sequence[start - prompt : start + response]
            position_ids[packed_row, at : at + prompt + response] = torch.arange(prompt + response)
            source_rows += [packed_row] * response
            source_columns += range(at + prompt - 1, at + prompt + response - 1)
            target_rows += [i] * response
            target_columns += range(response)
            at += prompt + response
        position_ids[packed_row, at:] = torch.arange(width - at)  # the rest is a segment of its own
    device = samples.sequences.device
    source = (torch.tensor(source_rows, device=device), torch.tensor(source_columns, device=device))
    target = (torch.tensor(target_rows, device=device), torch.tensor(target_columns, device=device))
    return PackedBatch(
        input_ids.to(device),
        position_ids.to(device),
        source,
        target,
        samples.responses[rows][target],
        (len(rows), samples.mask.shape[1]),
    )


def token_outputs(
    lm: nn.Module, batch: PackedBatch, layout: Layout, hidden_states: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`lm`'s logits at the positions that predict `batch`'s response tokens, (tokens, vocab), and with
    `hidden_states` the last hidden states there, (tokens, hidden)."""
    out = lm(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        output_hidden_states=hidden_states or layout.head_on_tokens,
        logits_to_keep=1 if layout.head_on_tokens else 0,  # 1: the head's only full-width pass is one position
        use_cache=False,
    )
    hidden = out.hidden_states[-1][batch.source] if hidden_states or layout.head_on_tokens else None
    logits = lm.get_output_embeddings()(hidden) if layout.head_on_tokens else out.logits[batch.source]
    return logits, hidden


def sequence_logprobs(
    lm: nn.Module, samples: Samples, temperature: float = 1.0, layout: Layout | None = None
) -> torch.Tensor:
    """Per-token log-probs of `samples`' responses under `lm` (e.g. a reference model), (samples, response length),
    zero after each response's end."""
    layout = layout or layout_of(lm)
    batch = pack_samples(samples, share_rows=layout.share_rows)
    logits, _ = token_outputs(lm, batch, layout)
    return batch.scatter(response_logprobs(logits, batch.tokens, temperature))
