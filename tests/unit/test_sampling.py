"""Sampling: the candidate shortcut keeps exactly the nucleus a full sort keeps; a draw follows the distribution and
never picks an excluded token; the chunked log-probs of the chosen tokens give autograd's values and gradients, and
the entropy is the whole tensor's."""

import pytest
import torch

from alignflow.rl.core import entropy_from_logits
from alignflow.rl.sampling import NUCLEUS_CANDIDATES, TOKENS_AT_ONCE, _draw, _nucleus, response_logprobs


def nucleus_by_full_sort(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    ordered, order = probs.sort(dim=-1, descending=True)
    kept = ordered.masked_fill(ordered.cumsum(-1) - ordered > top_p, 0.0)
    return torch.zeros_like(probs).scatter(-1, order, kept)


@pytest.mark.parametrize("sharpness", [0.1, 1.0, 5.0])
def test_nucleus_matches_a_full_sort_for_peaked_and_flat_distributions(sharpness):
    """Flat rows (sharpness 0.1) have nuclei far larger than the candidate set and take the full-sort path."""
    torch.manual_seed(0)
    probs = torch.softmax(sharpness * torch.randn(6, 4 * NUCLEUS_CANDIDATES), dim=-1)
    for top_p in (0.5, 0.9, 0.99):
        kept = _nucleus(probs, top_p)
        assert torch.equal(kept, nucleus_by_full_sort(probs, top_p))
        mass = kept.sum(-1)
        assert bool((mass >= top_p - 1e-6).all())


def test_nucleus_of_a_sure_token_is_that_token():
    probs = torch.zeros(2, 1000)
    probs[0, 7], probs[1, 3] = 1.0, 1.0
    assert torch.equal(_nucleus(probs, 0.9).nonzero()[:, 1], torch.tensor([7, 3]))


def test_draws_follow_the_distribution_and_never_pick_an_excluded_token():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([0.1, 0.0, 0.6, 0.3])).repeat(40_000, 1)  # token 1 has probability 0
    counts = torch.bincount(_draw(logits, 1.0), minlength=4).float() / len(logits)
    assert counts[1] == 0 and torch.allclose(counts, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01)
    nucleus = torch.bincount(_draw(logits, 0.65), minlength=4)  # top-p 0.65 keeps the 0.6 and 0.3 tokens
    assert nucleus[0] == 0 and nucleus[1] == 0 and nucleus[2] > nucleus[3] > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_chosen_logprobs_equal_autograd_s_values_and_gradients(dtype, temperature):
    """Rows of positions that make two full chunks and a short one."""
    torch.manual_seed(0)
    shape = (3, (2 * TOKENS_AT_ONCE + 20) // 3)
    logits = torch.randn(*shape, 300, dtype=dtype, requires_grad=True)
    responses, upstream = torch.randint(0, 300, shape), torch.randn(shape)
    scaled = logits.float() / temperature
    expected = scaled.gather(-1, responses.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(scaled, dim=-1)
    (expected_grad,) = torch.autograd.grad(expected, logits, upstream)
    got = response_logprobs(logits, responses, temperature)
    (got_grad,) = torch.autograd.grad(got, logits, upstream)
    assert torch.equal(got, expected) and got_grad.dtype == dtype
    assert torch.allclose(got_grad.float(), expected_grad.float(), atol=1e-6)


def test_entropy_taken_in_chunks_equals_the_whole_tensor_s():
    torch.manual_seed(0)
    logits = torch.randn(45, 300, dtype=torch.bfloat16)
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    assert torch.allclose(entropy_from_logits(logits, chunk=4), -(logprobs.exp() * logprobs).sum(-1), atol=1e-6)
