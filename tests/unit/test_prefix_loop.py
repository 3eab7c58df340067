"""jobs.engines.kv's BufferLayer and jobs.engines.prefix's row compaction on hand-made caches (the
views hold exactly the columns and rows the loop expects, the room is reused, holes are filled by
the last rows), and the share of work left that its ETA comes from."""

from __future__ import annotations

import pytest
import torch

from jobs.engines.kv import SPARE, BufferLayer
from jobs.engines.prefix import compacted, work_left


def cache(rows: int, length: int) -> torch.Tensor:
    """[rows, 1 head, length, 1]: row r, column c holds 10 * r + c."""
    return (10 * torch.arange(rows)[:, None] + torch.arange(length)[None, :]).float()[:, None, :, None]


def cells(t: torch.Tensor) -> list[list[int]]:
    return t[:, 0, :, 0].int().tolist()


def test_steps_write_in_place_until_the_room_runs_out() -> None:
    layer = BufferLayer(cache(2, 3), cache(2, 3))
    buffer = layer.buffer_k
    assert buffer.shape[-2] == 3 + SPARE
    for step in range(SPARE):
        keys, _ = layer.update(torch.full((2, 1, 1, 1), 100.0 + step), torch.zeros(2, 1, 1, 1))
        assert layer.buffer_k is buffer and keys.shape[-2] == 4 + step
    keys, values = layer.update(torch.full((2, 1, 1, 1), 7.0), torch.full((2, 1, 1, 1), 8.0))
    assert layer.buffer_k is not buffer and layer.buffer_k.shape[-2] == 3 + SPARE + 1 + SPARE
    assert cells(keys)[1][:5] == [10, 11, 12, 100, 101] and cells(keys)[1][-1] == 7
    assert cells(values)[0][-1] == 8 and layer.get_seq_length() == 3 + SPARE + 1


def test_an_empty_layer_takes_its_first_update() -> None:
    layer = BufferLayer()
    keys, _ = layer.update(cache(1, 2), cache(1, 2))
    assert cells(keys) == [[0, 1]] and layer.get_seq_length() == 2


def test_compaction_fills_holes_with_the_last_kept_rows() -> None:
    assert compacted([0, 2, 3, 5]) == ([0, 5, 2, 3], [1], [5])
    assert compacted([0, 1, 2]) == ([0, 1, 2], [], [])
    assert compacted([3, 4]) == ([3, 4], [0, 1], [3, 4])
    layer = BufferLayer(cache(6, 2), cache(6, 2))
    order, holes, movers = compacted([0, 2, 3, 5])
    layer.move_rows(holes, movers, 4)
    assert cells(layer.keys) == [[0, 1], [50, 51], [20, 21], [30, 31]] == cells(cache(6, 2)[order])


def test_dropped_columns_and_stacked_batches_keep_the_prefix_and_right_align_the_rest() -> None:
    layer = BufferLayer(cache(1, 6), cache(1, 6))
    layer.drop_columns(2, 4)
    assert cells(layer.keys) == [[0, 1, 4, 5]]
    keys, _ = layer.update(torch.full((1, 1, 1, 1), 9.0), torch.zeros(1, 1, 1, 1))
    assert cells(keys) == [[0, 1, 4, 5, 9]]
    other = BufferLayer(cache(2, 3), cache(2, 3))
    layer.stack(other, shared=2)
    assert cells(layer.keys) == [[0, 1, 4, 5, 9], [0, 1, 0, 0, 2], [10, 11, 0, 0, 12]]
    assert layer.buffer_k.shape[-2] == 5 + SPARE


def test_work_left_weighs_prompts_by_length_and_credits_running_rows() -> None:
    assert work_left([10, 10], {}, {0: 3, 1: 3}) == 1.0  # nothing answered: no rate to count against
    # answered: 40 tokens for weight 20 (2 per weight); prompt 3 has 20 of its expected 40
    assert work_left([10, 10, 20, 20], {2: 40}, {3: 20}) == 0.5
    # a row past its expected length counts 0.9 of its weight: (20 + 18) of 60 done
    assert work_left([10, 10, 20, 20], {2: 40}, {3: 100}) == pytest.approx(1 - 38 / 60)
    assert work_left([10, 10], {0: 5, 1: 50}, {}) == 0.0


def test_a_bf16_layer_stores_what_autocast_would_cast_its_fp32_keys_to() -> None:
    keys = torch.tensor([[[[1.0 + 2**-10], [3.0]]]])  # the first is not a bf16 number
    layer = BufferLayer(keys, keys, dtype=torch.bfloat16)
    new = torch.tensor([[[[5.0 + 2**-9]]]])
    stored, _ = layer.update(new, new)
    assert stored.dtype == torch.bfloat16
    assert torch.equal(stored, torch.cat([keys, new], dim=-2).to(torch.bfloat16))
    assert stored[0, 0, :, 0].tolist() == [1.0, 3.0, 5.0]
