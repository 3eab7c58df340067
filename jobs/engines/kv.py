"""A KV cache layer for jobs.engines.prefix's loop that writes each step's keys and values in place.

transformers' DynamicLayer concatenates its whole cache with each step's new column, a copy of the
cache per token (16% of the loop's time for SmolLM2-135M at 32 rows, torch profiler). BufferLayer
keeps keys and values as views of the first `length` columns of larger buffers: a step writes its
column into the room left, and the buffers are copied only when the room runs out (once per `SPARE`
steps at most) or when the loop reshapes its batch (rows leave, columns are dropped, batches join),
which copy the cache anyway. The columns a model reads are the same values in the same order, so
answers do not change.

Under CPU bf16 autocast a layer stores bf16 (`dtype`): the keys leave the rotary embedding in fp32,
and autocast's attention would cast the whole fp32 key cache to bf16 on every step (a fifth of the
loop's time, torch profiler); stored cast once, the attention reads the same bf16 values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers.cache_utils import DynamicLayer

if TYPE_CHECKING:
    import torch


SPARE = 32  # free columns after each copy: the steps that write in place before the next copy


class BufferLayer(DynamicLayer):
    """One layer's keys and values, [rows, heads, length, head_dim] views of [.., length + room, ..]
    buffers. Never holds unwritten columns in its views (they may hold anything)."""

    def __init__(
        self, keys: torch.Tensor | None = None, values: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:  # fmt: skip
        """A layer holding copies of `keys` and `values` (views such as `expand` are fine); without
        them, empty until its first update. `dtype`: what it stores (None: what it is given)."""
        super().__init__()
        self.dtype = dtype
        if keys is not None and values is not None:
            self._adopt(keys, values, SPARE)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        self.device, self.is_initialized = keys.device, True
        self.buffer_k, self.buffer_v = _roomy(keys, room, self.dtype), _roomy(values, room, self.dtype)
        self._show(keys.shape[-2])

    def _show(self, length: int) -> None:
        self.length = length
        self.keys, self.values = self.buffer_k[:, :, :length], self.buffer_v[:, :, :length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Write the new columns after the cached ones; return every column written so far."""
        if not self.is_initialized:
            self._adopt(key_states, value_states, SPARE)
            return self.keys, self.values
        length, new = self.length, key_states.shape[-2]
        if length + new > self.buffer_k.shape[-2]:
            self._adopt(self.buffer_k[:, :, :length], self.buffer_v[:, :, :length], new + SPARE)
        self.buffer_k[:, :, length : length + new] = key_states
        self.buffer_v[:, :, length : length + new] = value_states
        self._show(length + new)
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep these rows (one copy of the buffers, room included)."""
        self.buffer_k, self.buffer_v = self.buffer_k[indices], self.buffer_v[indices]
        self._show(self.length)

    def move_rows(self, holes: list[int], movers: list[int], rows: int) -> None:
        """Copy rows `movers` into rows `holes`, then keep the first `rows` (a copy of the moved rows
        only; the buffers keep their memory)."""
        import torch

        if holes:
            to, source = torch.tensor(holes), torch.tensor(movers)
            self.buffer_k.index_copy_(0, to, self.buffer_k[source])
            self.buffer_v.index_copy_(0, to, self.buffer_v[source])
        self.buffer_k, self.buffer_v = self.buffer_k[:rows], self.buffer_v[:rows]
        self._show(self.length)

    def drop_columns(self, start: int, stop: int) -> None:
        """Remove columns [start, stop) (one copy of the buffers, room included)."""
        import torch

        keep = torch.cat([torch.arange(start), torch.arange(stop, self.buffer_k.shape[-2])])
        self.buffer_k, self.buffer_v = self.buffer_k[:, :, keep], self.buffer_v[:, :, keep]
        self._show(self.length - (stop - start))

    def stack(self, other: BufferLayer, shared: int) -> None:
        """Append `other`'s rows below these; the narrower of the two gets zero columns right after
        its first `shared` (the caller masks them)."""
        width, mine, theirs = max(self.length, other.length), self.length, other.length
        self.buffer_k = _stacked([self.buffer_k[:, :, :mine], other.buffer_k[:, :, :theirs]], width, shared)
        self.buffer_v = _stacked([self.buffer_v[:, :, :mine], other.buffer_v[:, :, :theirs]], width, shared)
        self._show(width)


def _roomy(t: torch.Tensor, room: int, dtype: torch.dtype | None) -> torch.Tensor:
    """A copy of `t` (cast to `dtype`) in a buffer `room` columns longer (the room unwritten)."""
    rows, heads, length, dim = t.shape
    buffer = t.new_empty((rows, heads, length + room, dim), dtype=dtype or t.dtype)
    buffer[:, :, :length] = t
    return buffer


def _stacked(parts: list[torch.Tensor], width: int, shared: int) -> torch.Tensor:
    """`parts` one below another in a buffer of `width` columns plus room, each part's columns after
    `shared` right-aligned and the gap zeroed."""
    first = parts[0]
    rows = sum(p.shape[0] for p in parts)
    buffer = first.new_empty((rows, first.shape[1], width + SPARE, first.shape[3]))
    top = 0
    for p in parts:
        bottom, gap = top + p.shape[0], width - p.shape[-2]
        buffer[top:bottom, :, :shared] = p[:, :, :shared]
        buffer[top:bottom, :, shared : shared + gap] = 0
        buffer[top:bottom, :, shared + gap : width] = p[:, :, shared:]
        top = bottom
    return buffer
