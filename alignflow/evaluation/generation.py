"""Generate for held-out prompts in length-sorted batches with a fixed seed, and estimate KL(policy || reference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from alignflow.progress import progress
from alignflow.rl.packed import layout_of, sequence_logprobs
from alignflow.rl.sampling import Samples, sample


@dataclass
class Generations:
    """Per-prompt results in the prompts' original order; `batches` keep the sampled tensors for scoring."""

    texts: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    batches: list[tuple[list[int], Samples]] = field(default_factory=list)
    """(original prompt indices, samples) per batch."""

    @property
    def unfinished_fraction(self) -> float:
        return round(1 - sum(self.finished) / max(1, len(self.finished)), 4)


Batch = tuple[int, list[int]]
"""(batch number, prompt indices): a unit of generation whose draws depend only on its number and the seed."""


def length_batches(prompts: list[list[int]], batch_size: int) -> list[Batch]:
    """Prompts sorted by length (less padding), cut into numbered batches."""
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    return [
        (number, order[start : start + batch_size]) for number, start in enumerate(range(0, len(order), batch_size))
    ]


def batch_seed(seed: int, number: int) -> int:
    return seed * 100_003 + number


@torch.no_grad()
def generate(
    lm,
    tokenizer,
    prompts: list[list[int]],
    stop_id: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    seed: int,
    batches: list[Batch] | None = None,
) -> Generations:
    """One sampled response per prompt of `batches` (default: all, in length-sorted batches). Each batch reseeds
    from (seed, its number), so two models see the same random stream per batch, and any share of the batches
    (one worker's) draws exactly what it draws in a run over all of them."""
    lm.eval()
    texts, lengths, finished = [""] * len(prompts), [0] * len(prompts), [False] * len(prompts)
    out = Generations()
    batches = length_batches(prompts, batch_size) if batches is None else batches
    for done, (number, indices) in enumerate(batches, 1):
        torch.manual_seed(batch_seed(seed, number))
        drawn = sample(
            lm, tokenizer, [prompts[i] for i in indices], stop_id, max_new_tokens, temperature=temperature, top_p=top_p
        )
        out.batches.append((indices, drawn))
        for row, index in enumerate(indices):
            texts[index], lengths[index] = drawn.texts[row], int(drawn.mask[row].sum())
            finished[index] = bool(drawn.finished[row])
        progress(f"sampled batch {done}/{len(batches)}")
    out.texts, out.lengths, out.finished = texts, lengths, finished
    return out


@torch.no_grad()
def sequence_kl(policy, reference, generations: Generations, temperature: float) -> list[float]:
    """Per-response sum over tokens of log pi(y_t) - log ref(y_t), on the policy's own samples (k1 estimate)."""
    kls = [0.0] * len(generations.texts)
    policy_layout, reference_layout = layout_of(policy), layout_of(reference)
    for indices, drawn in generations.batches:
        log_ratio = sequence_logprobs(policy, drawn, temperature, policy_layout) - sequence_logprobs(
            reference, drawn, temperature, reference_layout
        )
        for index, value in zip(indices, (log_ratio * drawn.mask).sum(1)):
            kls[index] = float(value)
    return kls
