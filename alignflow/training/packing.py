"""Padding-free SFT batches: the examples of one batch, each kept whole, share rows instead of each getting a row
padded to the batch's longest example.

Rows are as long as the longest example (never longer than dynamic padding would make them), filled first-fit
decreasing, and position ids restart at 0 for every example. transformers reads the restarts as packed sequences
and masks attention to each example's own tokens, so every token sees what it saw in its own padded row: the loss
is the same, computed on fewer positions. A step trains on the same examples as with padding, so the learning curve
does not move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alignflow.data.formatting import IGNORE_INDEX


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of the examples in each row: first-fit decreasing into rows of `capacity` tokens (at least the
    longest length)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if lengths[index] <= free), None)
        if row is None:
            rows.append([])
            room.append(capacity)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= lengths[index]
    return rows


@dataclass(frozen=True)
class PackedCollator:
    """Collates pre-tokenized `input_ids` + `labels` into packed rows with `position_ids` and no attention mask.

    The first label of each example is ignored: the previous example's last token would otherwise be trained to
    predict it (with padding that position is never predicted either). A row's leftover space is padding that forms
    a segment of its own, with ignored labels."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = [len(feature["input_ids"]) for feature in features]
        width = max(lengths)
        rows = pack_rows(lengths, width)
        input_ids, labels, positions = [], [], []
        for row in rows:
            ids, targets, position = [], [], []
            for index in row:
                ids += list(features[index]["input_ids"])
                targets += [IGNORE_INDEX, *list(features[index]["labels"])[1:]]
                position += range(lengths[index])
            free = width - len(ids)
            input_ids.append(ids + [self.pad_token_id] * free)
            labels.append(targets + [IGNORE_INDEX] * free)
            positions.append(position + list(range(free)))
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
            "use_cache": False,  # transformers looks for packed sequences only when no cache is built
        }


def packs_correctly(model) -> bool:
    """Whether `model` keeps packed examples apart: the logits of an example packed after another equal its logits
    alone. Models whose attention ignores position-id restarts would let examples see each other."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(0, vocab, (1, n), generator=generator) for n in (5, 7))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(5), torch.arange(7)]).unsqueeze(0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(input_ids=second, use_cache=False).logits
            together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[:, 5:]
    finally:
        model.train(was_training)
    return bool(torch.allclose(alone.float(), together.float(), atol=1e-4, rtol=1e-3))
