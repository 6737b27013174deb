"""Sampling responses from a causal LM for a batch of tokenized prompts (PPO rollouts and evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignflow.rl.kv_cache import growing_cache

TOKENS_AT_ONCE = 512
"""Positions per chunk where a float32 copy of (positions, vocab) logits is made outside autograd."""


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
        return self.sequences[:, self.query_length :]


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding, as generate() uses."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_mask(responses: torch.Tensor, stop_id: int) -> torch.Tensor:
    """1 up to and including the first stop token, 0 after it (generate pads finished rows)."""
    is_stop = (responses == stop_id).long()
    return ((is_stop.cumsum(-1) - is_stop) == 0).float()


def pad_left(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, longest - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def prefill(lm, prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    """(left-padded ids, their mask, a new key-value cache holding them, the logits after each prompt's last token)."""
    ids, mask = pad_left(prompts, pad_id, device)
    cache = growing_cache(lm.config)
    logits = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions(mask),
        cache=cache,
        use_cache=True,
        logits_to_keep=last_positions(ids.shape[1], 1),
    ).logits[:, -1]
    return ids, mask, cache, logits


@torch.no_grad()
def sample(
    lm,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    stop_id: int,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> Samples:
    """Sample one response per prompt (temperature, then top-p; no top-k, so log-probs computed later with the same
    temperature match the sampling distribution); temperature 0 decodes greedily, as benchmarks do. Decodes with a
    KV cache and drops a row from the batch as soon as it emits the stop token, so a batch costs what its rows need
    rather than max_new_tokens for every row."""
    device = next(lm.parameters()).device
    pad_id = tokenizer.pad_token_id
    queries, query_mask, cache, logits = prefill(lm, prompts, pad_id, device)
    count = len(prompts)
    responses = torch.full((count, max_new_tokens), pad_id, dtype=torch.long, device=device)
    active = torch.arange(count, device=device)
    mask = query_mask
    steps = 0
    for step in range(max_new_tokens):
        steps = step + 1
        if step < min_new_tokens:
            logits[:, stop_id] = float("-inf")
        tokens = logits.argmax(-1) if temperature == 0 else _draw(logits.float() / temperature, top_p)
        responses[active, step] = tokens
        running = tokens != stop_id
        if not running.any() or step + 1 == max_new_tokens:
            break
        if not running.all():
            keep = running.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            active, tokens, mask = active[keep], tokens[keep], mask[keep]
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        logits = lm(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=positions(mask)[:, -1:],
            cache=cache,
            use_cache=True,
        ).logits[:, -1]
    responses = responses[:, :steps]
    sequences = torch.cat([queries, responses], dim=1)
    query_length = queries.shape[1]
    finished = (responses == stop_id).any(1)
    response_tokens = response_mask(responses, stop_id)
    lengths = [int(n) - int(stop) for n, stop in zip(response_tokens.sum(1), finished)]
    texts = [tokenizer.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(responses, lengths)]
    return Samples(
        sequences,
        torch.cat([query_mask, response_tokens.long()], dim=1),
        query_length,
        response_tokens,
        texts,
        finished,
    )


NUCLEUS_CANDIDATES = 256
"""Top-p looks at this many most likely tokens first and sorts the whole vocabulary only for rows whose nucleus
is larger (rare at the temperatures used here); the result is the same nucleus either way."""


def last_positions(length: int, count: int) -> torch.Tensor:
    """`logits_to_keep` for the last `count` of `length` positions, as indices rather than a count: transformers
    then gathers those hidden states into a contiguous tensor, where a count slices a strided view, on which CPU
    matrix products in bf16 copy the LM head once per row (at a 49k vocabulary, far slower than the product)."""
    return torch.arange(length - count, length)


def _draw(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """One token per row from softmax(logits), restricted to the smallest set with probability >= top_p.

    Inverse-CDF sampling: a uniform draw per row located in the row's cumulative distribution (float64, scaled by
    its total), an exact draw from the same distribution as torch.multinomial at a quarter of its cost on CPU
    (multinomial draws an exponential for every vocabulary entry). Zero-probability tokens are never drawn."""
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        probs = _nucleus(probs, top_p)
    cdf = probs.double().cumsum(-1)
    uniform = torch.rand(len(cdf), 1, dtype=torch.float64, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, uniform, right=True).squeeze(1)


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """`probs` with every token outside the top-p nucleus zeroed: a token is kept while the mass of the tokens
    more likely than it is at most top_p."""
    top, order = probs.topk(min(NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
    needs_all = top.sum(-1) <= top_p  # the nucleus may extend past the candidates: sort these rows fully
    if needs_all.any():
        top_all, order_all = probs[needs_all].sort(dim=-1, descending=True)
        kept_all = top_all.masked_fill(top_all.cumsum(-1) - top_all > top_p, 0.0)
    kept = top.masked_fill(top.cumsum(-1) - top > top_p, 0.0)
    out = torch.zeros_like(probs).scatter(-1, order, kept)
    if needs_all.any():
        out[needs_all] = torch.zeros_like(top_all).scatter(-1, order_all, kept_all)
    return out


def response_slice(per_position: torch.Tensor, query_length: int) -> torch.Tensor:
    """The positions whose outputs predict the response tokens (hidden states or values at query_length-1 ... -2)."""
    return per_position[:, query_length - 1 : -1]


def response_logprobs(logits: torch.Tensor, responses: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of the sampled response tokens under `logits` aligned with them (scaled as when sampling),
    in float32: logit minus logsumexp, computed TOKENS_AT_ONCE positions at a time (`ChosenLogprobs`)."""
    return ChosenLogprobs.apply(logits, responses, temperature)


class ChosenLogprobs(torch.autograd.Function):
    """log p(token) = x[token] - logsumexp(x), x = logits / temperature, with a backward pass that holds neither
    a float32 copy of the (positions, vocab) logits nor their float32 gradient.

    Autograd would keep the float32 copy for the backward pass and build two float32 gradients of that size (one
    per term) before casting to the logits' dtype: about a gigabyte more at PPO's batch, the peak of the align
    stage. Here the backward pass recomputes softmax(x) a few hundred positions at a time from the saved logits and
    writes (onehot - softmax) * grad straight into a gradient of the logits' dtype. The arithmetic is the same."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, responses: torch.Tensor, temperature: float) -> torch.Tensor:
        flat, tokens = logits.reshape(-1, logits.shape[-1]), responses.reshape(-1)
        chosen, normaliser = [], []
        for chunk, chunk_tokens in zip(flat.split(TOKENS_AT_ONCE), tokens.split(TOKENS_AT_ONCE)):
            scaled = float_scaled(chunk, temperature)
            chosen.append(scaled.gather(-1, chunk_tokens.unsqueeze(-1)).squeeze(-1))
            normaliser.append(torch.logsumexp(scaled, dim=-1))
        normaliser = torch.cat(normaliser)
        ctx.save_for_backward(logits, responses, normaliser)
        ctx.temperature = temperature
        return (torch.cat(chosen) - normaliser).view(responses.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logits, responses, normaliser = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        grad_logits = torch.empty_like(flat)
        chunks = zip(
            flat.split(TOKENS_AT_ONCE),
            responses.reshape(-1).split(TOKENS_AT_ONCE),
            normaliser.split(TOKENS_AT_ONCE),
            grad.reshape(-1).split(TOKENS_AT_ONCE),
            grad_logits.split(TOKENS_AT_ONCE),
        )
        for chunk, tokens, lse, g, out in chunks:
            scaled = float_scaled(chunk, ctx.temperature)
            part = torch.exp(scaled - lse.unsqueeze(-1)).mul_(-g.unsqueeze(-1))
            part.scatter_add_(-1, tokens.unsqueeze(-1), g.unsqueeze(-1))
            if ctx.temperature != 1.0:
                part /= ctx.temperature
            out.copy_(part)
        return grad_logits.view(logits.shape), None, None


def float_scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits.float() / temperature if temperature != 1.0 else logits.float()
