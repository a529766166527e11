"""A KV-cache layer for a decoding batch whose rows come and go, with room kept for more tokens and rows.

A `DynamicLayer` appends a step's token by concatenation, copying the whole cache at every step: for 32
rows with 1,000 cached tokens that is a sixth of the step's time on a CPU (`benchmarks/decode_step.py`).
Selecting the rows that stay, or adding rows that join, copies it again. A `RoomyLayer` keeps its keys
and values as views into larger buffers instead: a step writes its token into the free columns, rows
that stay move up over the ones that left, joining rows are written below them, and leading columns
that only padding uses are dropped by moving the view. Only when the buffers are full is the layer built
anew. The keys and values the model reads are the same numbers either way, padding included (zeros).
"""

from __future__ import annotations

import torch
from transformers import DynamicLayer


class RoomyLayer(DynamicLayer):
    """Keys and values [rows, heads, tokens, dim] as views of buffers with room for more of both."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int, rows: int) -> None:
        """The layer of `keys` and `values`, with room for `room` more tokens and `rows` rows in all."""
        super().__init__()
        self.lazy_initialization(keys, values)
        self._buffers = (keys, values)
        self._rows, self._start, self._end = keys.shape[0], 0, keys.shape[-2]
        self._rebuild(rows, 0, room)

    def has_room(self) -> bool:
        """Whether a step's token fits after the tokens."""
        return self._end < self._buffers[0].shape[-2]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """Write a step's tokens into the room after the cached ones (the batch makes room before a step)."""
        end = self._end + key_states.shape[-2]
        for buffer, states in zip(self._buffers, (key_states, value_states), strict=True):
            buffer[: self._rows, :, self._end : end] = states
        self._end = end
        return self._view()

    def keep(self, kept: list[int]) -> None:
        """Keep only the rows `kept` (increasing), each moved up into the place of the first that left."""
        for new, old in enumerate(kept):
            if new != old:
                for buffer in self._buffers:
                    buffer[new, :, self._start : self._end] = buffer[old, :, self._start : self._end]
        self._rows = len(kept)
        self._view()

    def drop_leading(self, columns: int) -> None:
        """Drop the first `columns` token columns (padding in every row)."""
        self._start += columns
        self._view()

    def join(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Add rows below the others, the shorter side padded on the left. Rows join longest first, so the
        new ones nearly always fit; where they do not, the buffers are built anew with the room they need."""
        rows, width = keys.shape[0], keys.shape[-2]
        if self._rows + rows > self._buffers[0].shape[0] or width > self._end:
            self._rebuild(self._rows + rows, max(0, width - self._end), self._buffers[0].shape[-2] - self._end)
        start = min(self._start, self._end - width)
        for buffer, states in zip(self._buffers, (keys, values), strict=True):
            buffer[: self._rows, :, start : self._start] = 0
            buffer[self._rows : self._rows + rows, :, start : self._end - width] = 0
            buffer[self._rows : self._rows + rows, :, self._end - width : self._end] = states
        self._rows, self._start = self._rows + rows, start
        self._view()

    def _rebuild(self, rows: int, left: int, room: int) -> None:
        """New zeroed buffers: room for `rows` rows, `left` more columns before the tokens, `room` after them."""
        live = [buffer[: self._rows, :, self._start : self._end] for buffer in self._buffers]
        width = left + live[0].shape[-2]
        shape = (max(rows, self._rows), live[0].shape[1], width + room, live[0].shape[-1])
        self._buffers = tuple(tensor.new_zeros(shape) for tensor in live)
        for buffer, tensor in zip(self._buffers, live, strict=True):
            buffer[: self._rows, :, left:width] = tensor
        self._start, self._end = 0, width
        self._view()

    def _view(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = (buffer[: self._rows, :, self._start : self._end] for buffer in self._buffers)
        return self.keys, self.values
