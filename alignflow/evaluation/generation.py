"""Generate for held-out prompts in length-sorted batches with a fixed seed, and estimate KL(policy || reference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from alignflow.rl.sampling import Samples, sample, sequence_logprobs


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
) -> Generations:
    """One sampled response per prompt. Prompts are batched by length (less padding) and the seed is reset first,
    so two models given the same prompts see the same batches and the same random stream."""
    torch.manual_seed(seed)
    lm.eval()
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    texts, lengths, finished = [""] * len(prompts), [0] * len(prompts), [False] * len(prompts)
    out = Generations()
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        drawn = sample(
            lm, tokenizer, [prompts[i] for i in indices], stop_id, max_new_tokens, temperature=temperature, top_p=top_p
        )
        out.batches.append((indices, drawn))
        for row, index in enumerate(indices):
            texts[index], lengths[index] = drawn.texts[row], int(drawn.mask[row].sum())
            finished[index] = bool(drawn.finished[row])
    out.texts, out.lengths, out.finished = texts, lengths, finished
    return out


@torch.no_grad()
def sequence_kl(policy, reference, generations: Generations, temperature: float) -> list[float]:
    """Per-response sum over tokens of log pi(y_t) - log ref(y_t), on the policy's own samples (k1 estimate)."""
    kls = [0.0] * len(generations.texts)
    for indices, drawn in generations.batches:
        log_ratio = sequence_logprobs(policy, drawn, temperature) - sequence_logprobs(reference, drawn, temperature)
        for index, value in zip(indices, (log_ratio * drawn.mask).sum(1)):
            kls[index] = float(value)
    return kls
