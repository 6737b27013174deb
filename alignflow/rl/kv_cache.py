"""A key-value cache that writes each decoding step in place instead of copying itself.

transformers' `DynamicLayer` appends a step with `torch.cat`, which copies the whole cache of every layer at every
step: at IFEval's long answers that copy costs more than the attention that reads it. `GrowingLayer` keeps room for
`HEADROOM` more positions, so a step writes one column; the cache is copied only when the room runs out or the batch
changes (a finished row leaves, a waiting prompt joins). The keys and values it returns are the same numbers, so
decoding gives the same tokens (`bench/greedy_refill.py` measures the speed).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

HEADROOM = 128
"""Positions reserved past the current length: one copy per this many decoding steps at most."""


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of a larger buffer."""

    _views: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        end = length + key_states.shape[-2]
        # Anything that replaced keys/values (batch selection, padding, slicing) leaves them outside the buffer.
        replaced = self._views is None or self.keys is not self._views[0] or self.values is not self._views[1]
        if replaced or end > self._room[0].shape[-2]:
            self._room = tuple(
                self._allocate(states, current, length, end)
                for states, current in ((key_states, self.keys), (value_states, self.values))
            )
        for room, states in zip(self._room, (key_states, value_states)):
            room[:, :, length:end] = states
        self.keys, self.values = (room[:, :, :end] for room in self._room)
        self._views = (self.keys, self.values)
        return self.keys, self.values

    @staticmethod
    def _allocate(states: torch.Tensor, current: torch.Tensor, length: int, end: int) -> torch.Tensor:
        batch, heads, _, dim = states.shape
        room = states.new_empty(batch, heads, end + HEADROOM, dim)
        if length:
            room[:, :, :length] = current
        return room


def growing_cache(config) -> DynamicCache:
    """A `DynamicCache` for `config` whose full-attention layers grow in place (sliding-window layers stay as is)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
