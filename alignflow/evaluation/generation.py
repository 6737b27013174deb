"""Generate for held-out prompts in batches with a fixed seed, and estimate KL(policy || reference) on the samples."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from alignflow.rl.sampling import Samples, sample, sequence_logprobs


@dataclass
class Generations:
    texts: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    batches: list[Samples] = field(default_factory=list)


@torch.no_grad()
def generate(lm, tokenizer, prompts: list[list[int]], stop_id: int, max_new_tokens: int, temperature: float,
             top_p: float, batch_size: int, seed: int) -> Generations:
    """One sampled response per prompt; the seed is reset first so two models see the same random stream."""
    torch.manual_seed(seed)
    lm.eval()
    out = Generations()
    for start in range(0, len(prompts), batch_size):
        drawn = sample(lm, tokenizer, prompts[start:start + batch_size], stop_id, max_new_tokens,
                       temperature=temperature, top_p=top_p)
        out.batches.append(drawn)
        out.texts += drawn.texts
        out.lengths += [int(n) for n in drawn.mask.sum(1)]
    return out


@torch.no_grad()
def sequence_kl(policy, reference, generations: Generations, temperature: float) -> list[float]:
    """Per-response sum over tokens of log pi(y_t) - log ref(y_t), on the policy's own samples (k1 estimate)."""
    kls = []
    for drawn in generations.batches:
        log_ratio = sequence_logprobs(policy, drawn, temperature) - sequence_logprobs(reference, drawn, temperature)
        kls += [float(v) for v in (log_ratio * drawn.mask).sum(1)]
    return kls
