"""Sampling responses from a causal LM for a batch of tokenized prompts (PPO rollouts and evaluation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class Samples:
    sequences: torch.Tensor
    """prompt (left-padded) + response tokens."""
    attention_mask: torch.Tensor
    query_length: int
    mask: torch.Tensor
    """1 on response tokens up to and including the stop token."""
    texts: list[str]
    """Decoded responses without the stop token."""
    finished: torch.Tensor
    """True where the response ended with the stop token (False: cut at max_new_tokens)."""

    @property
    def responses(self) -> torch.Tensor:
        return self.sequences[:, self.query_length:]


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding, as generate() uses."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_mask(responses: torch.Tensor, stop_id: int) -> torch.Tensor:
    """1 up to and including the first stop token, 0 after it (generate pads finished rows)."""
    is_stop = (responses == stop_id).long()
    return ((is_stop.cumsum(-1) - is_stop) == 0).float()


def pad_left(prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, longest - len(prompt):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample(lm, tokenizer, prompts: Sequence[Sequence[int]], stop_id: int, max_new_tokens: int, min_new_tokens: int = 0,
           temperature: float = 1.0, top_p: float = 1.0) -> Samples:
    """Sample one response per prompt (no top-k, so log-probs computed later match the sampling distribution)."""
    device = next(lm.parameters()).device
    queries, query_mask = pad_left(prompts, tokenizer.pad_token_id, device)
    sequences = lm.generate(input_ids=queries, attention_mask=query_mask, do_sample=True, top_k=0, top_p=top_p,
                            temperature=temperature, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                            eos_token_id=stop_id, pad_token_id=tokenizer.pad_token_id)
    query_length = queries.shape[1]
    mask = response_mask(sequences[:, query_length:], stop_id)
    finished = (sequences[:, query_length:] == stop_id).any(1)
    lengths = [int(n) - int(stop) for n, stop in zip(mask.sum(1), finished)]
    texts = [tokenizer.decode(row[:n], skip_special_tokens=True).strip()
             for row, n in zip(sequences[:, query_length:], lengths)]
    return Samples(sequences, torch.cat([query_mask, mask.long()], dim=1), query_length, mask, texts, finished)


def response_slice(per_position: torch.Tensor, query_length: int) -> torch.Tensor:
    """The positions whose outputs predict the response tokens (logits or values at query_length-1 ... -2)."""
    return per_position[:, query_length - 1:-1]


def response_logprobs(logits: torch.Tensor, responses: torch.Tensor, query_length: int, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of the sampled response tokens under `logits` (scaled as when sampling)."""
    logits = response_slice(logits, query_length) / temperature
    return torch.log_softmax(logits.float(), -1).gather(-1, responses.unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(lm, samples: Samples, temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probs of `samples`' responses under `lm` (e.g. a reference model)."""
    out = lm(input_ids=samples.sequences, attention_mask=samples.attention_mask,
             position_ids=positions(samples.attention_mask))
    return response_logprobs(out.logits, samples.responses, samples.query_length, temperature)
