"""Top-p sampling: the candidate shortcut keeps exactly the nucleus a full sort keeps."""

import pytest
import torch

from alignflow.rl.sampling import NUCLEUS_CANDIDATES, _nucleus


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
