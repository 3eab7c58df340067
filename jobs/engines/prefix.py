"""The HF engine's fast greedy loop on a CPU: a shared prompt prefix computed once, rows that leave
their batch as they end.

    gens = generate(model, tokenizer, prompts, batch_size=32, max_new_tokens=128)   # if applies(model)

- the prompts' common token prefix (chat template and instructions: ~115 of SmolLM2's ~147 prompt
  tokens) goes through the model once, at batch 1; each batch starts from copies of its KV cache
  and prefills only its prompts' suffixes, left-padded between prefix and suffix (position ids from
  the attention mask, as `generate` takes them from its left padding);
- a greedy loop of its own drops a row (and its cache row) as soon as it ends, by the rules of
  `transformers.generate` in jobs.engines.hf: an eos id, `max_new_tokens`, or its JsonEnd; once a
  quarter of the batch is free, the next prompts are prefilled and join it (the narrower cache gets
  masked columns after the prefix), so `batch_size` rows keep running until the prompts run out;
- the cache is jobs.engines.kv's BufferLayers: each step writes its column in place (no copy of the
  cache per token), and a row that ends takes the last kept row in its place (a copy of that row,
  not of the batch).

At fp32 its answers equal jobs.engines.hf.generate's token for token (tests/integration/jobs/
test_prefix_engine.py); under bf16 autocast the shapes differ, hence the rounding, and a few answers
differ (benchmarks/eval_throughput.py --engine hf-prefix counts them and scores both).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.engines import Generation, JsonEnd, Progress, common_prefix, eos_ids, pad_id, settle

if TYPE_CHECKING:
    import torch


def applies(model: Any) -> bool:
    """True for an unquantized decoder-only model on a CPU whose KV cache is plain full attention
    (no sliding window, no recurrent state): what this loop's cache copies and row drops assume."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    config = model.config
    if getattr(model, "is_quantized", False) or getattr(config, "is_encoder_decoder", False):
        return False
    if next(model.parameters()).device.type != "cpu":
        return False
    try:
        cache = DynamicCache(config=config)
    except Exception:  # a config transformers lays out no cache for: generate handles it
        return False
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def prefix_cache(model: Any, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of `prefix` at batch 1; empty for an empty prefix."""
    import torch
    from transformers.cache_utils import DynamicCache

    if not prefix:
        return []
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([prefix]), cache=cache, use_cache=True, logits_to_keep=1)
    layers: list[Any] = cache.layers
    return [(layer.keys, layer.values) for layer in layers]


def expanded(model: Any, kv: list[tuple[torch.Tensor, torch.Tensor]], rows: int) -> Any:
    """A fresh DynamicCache of BufferLayers (jobs.engines.kv: each step writes in place, in bf16
    under CPU bf16 autocast) holding `rows` copies of the prefix's keys and values (none: empty)."""
    import torch
    from transformers.cache_utils import DynamicCache

    from jobs.engines.kv import BufferLayer

    autocast = torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu") if autocast else None
    cache = DynamicCache(config=model.config)
    layers = [BufferLayer(dtype=dtype) for _ in cache.layers]
    cache.layers = list(layers)
    for layer, (k, v) in zip(layers, kv, strict=False):
        layer.update(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
    return cache


@dataclass
class Rows:
    """The running batch: per row its prompt's index, attention mask over the cache's columns, next
    position id and the logits its next token is chosen from; the cache holds the same rows."""

    index: list[int]
    cache: Any
    mask: torch.Tensor
    next_pos: torch.Tensor
    logits: torch.Tensor

    def select(self, keep: list[int], shared: int) -> list[int]:
        """Keep these rows only, then drop the columns after the prefix that no kept row attends to
        (rows are right-aligned: a row that ended was the only one to use them). The kept rows
        after the last kept position fill the holes (a copy of the moved rows, not of the cache),
        so the order changes: returns the new order as old row positions."""
        import torch

        order = list(range(len(self.index)))
        if len(keep) < len(self.index):
            order, holes, movers = compacted(keep)
            for layer in self.cache.layers:
                layer.move_rows(holes, movers, len(keep))
            at = torch.tensor(order)
            self.mask, self.next_pos, self.logits = self.mask[at], self.next_pos[at], self.logits[at]
            self.index = [self.index[row] for row in order]
        unused = int(self.mask[:, shared:].any(0).int().argmax())
        if unused:
            for layer in self.cache.layers:
                layer.drop_columns(shared, shared + unused)
            self.mask = torch.cat([self.mask[:, :shared], self.mask[:, shared + unused :]], dim=1)
        return order

    def join(self, other: Rows, shared: int) -> None:
        """Append `other`'s rows (its cache's rows too); the narrower of the two gets masked columns
        right after the prefix."""
        import torch

        width, other_width = self.mask.shape[1], other.mask.shape[1]
        for layer, extra in zip(self.cache.layers, other.cache.layers, strict=True):
            layer.stack(extra, shared)
        self.mask = torch.cat([_widened(self.mask, other_width - width, shared),
                               _widened(other.mask, width - other_width, shared)])  # fmt: skip
        self.index += other.index
        self.next_pos = torch.cat([self.next_pos, other.next_pos])
        self.logits = torch.cat([self.logits, other.logits])


def work_left(weights: Sequence[float], answered: dict[int, int], running: dict[int, int]) -> float:
    """The share of the work still to do: prompt i costs in proportion to `weights[i]`; `answered`
    and `running` map prompts to their tokens generated. A running row counts its tokens against
    the tokens per weight of the answered ones, up to 0.9 of its weight.

    The loop weighs a prompt by its tokens after the shared prefix plus their mean (longer
    sentences get longer answers, and the longest run first; half fixed, half proportional fit
    best). Counting finished answers only put the first ETA at 1.6x-1.9x the time left (SmolLM2
    checkpoint-64, 200 GMB sentences): the ~30 running rows' work was called undone, and the last
    prompts cost less than the first. Weighed, the first three ETAs were 0.86x-0.95x of it (and of
    the base model's time left).

    >>> work_left([10, 10, 20, 20], {2: 40}, {3: 20})  # 20 done + 20 * 0.5 of 60
    0.5
    """
    per_weight = sum(answered.values()) / sum(weights[i] for i in answered) if answered else 0.0
    done: float = sum(weights[i] for i in answered)
    if per_weight:
        done += sum(min(n / per_weight, 0.9 * weights[i]) for i, n in running.items())
    return max(0.0, 1 - done / sum(weights))


def compacted(keep: list[int]) -> tuple[list[int], list[int], list[int]]:
    """For rows `keep` (ascending) to stay: (the new order as old positions, the holes below
    len(keep) left by rows that go, the kept rows at or above len(keep) that move into them).

    >>> compacted([0, 2, 3, 5])
    ([0, 5, 2, 3], [1], [5])
    """
    n, kept = len(keep), set(keep)
    holes = [p for p in range(n) if p not in kept]
    movers = [q for q in keep if q >= n]
    order = list(range(n))
    for hole, mover in zip(holes, movers, strict=True):
        order[hole] = mover
    return order, holes, movers


def _widened(mask: torch.Tensor, columns: int, shared: int) -> torch.Tensor:
    """`mask` with `columns` zero columns after its first `shared` (itself for `columns` <= 0)."""
    import torch

    if columns <= 0:
        return mask
    return torch.cat([mask[:, :shared], mask.new_zeros((mask.shape[0], columns)), mask[:, shared:]], dim=1)


def prefill(model: Any, kv: list[tuple[torch.Tensor, torch.Tensor]], index: list[int],
            suffixes: list[list[int]], pad: int) -> Rows:  # fmt: skip
    """New rows: the prefix's cache copied, each suffix left-padded after it and run through the
    model (position ids from the attention mask, as transformers' generate makes them)."""
    import torch

    rows, width, shared = len(suffixes), max(len(s) for s in suffixes), kv[0][0].shape[-2] if kv else 0
    ids = torch.full((rows, width), pad, dtype=torch.long)
    mask = torch.zeros((rows, shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for row, suffix in enumerate(suffixes):
        ids[row, width - len(suffix) :] = torch.tensor(suffix)
        mask[row, shared + width - len(suffix) :] = 1
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    cache = expanded(model, kv, rows)  # updated in place by each forward
    step = model(input_ids=ids, attention_mask=mask, position_ids=positions[:, shared:], cache=cache,
                 use_cache=True, logits_to_keep=1)  # fmt: skip
    return Rows(index, cache, mask, positions[:, -1] + 1, step.logits[:, -1, :])


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int,
    max_new_tokens: int,
    stop_at_json: bool = True,
    progress: Progress | None = None,
) -> list[Generation]:
    """Greedy generations for `prompts` in their order, equal to jobs.engines.hf.generate's (module
    docstring). At most `batch_size` rows run at once; as rows end, the next prompts (longest first)
    join once a quarter of the batch is free. `progress(done, total, seconds, left=...)` is called
    each time another `batch_size` answers are done, and at the end (`left`: work_left)."""
    import torch

    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    ends = eos_ids(tokenizer, getattr(model, "generation_config", None))
    pad = pad_id(tokenizer, ends)
    shared = common_prefix(encoded)
    suffixes = [len(e) - shared for e in encoded]
    weights = [n + sum(suffixes) / len(suffixes) + 1 for n in suffixes]  # work_left's cost model
    pending = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    tokens: list[list[int]] = [[] for _ in encoded]
    json_ends = [JsonEnd() for _ in encoded]
    out: list[Generation | None] = [None] * len(prompts)
    started, done, reported = time.perf_counter(), 0, 0
    running: Rows | None = None
    with torch.inference_mode():
        kv = prefix_cache(model, encoded[0][:shared] if encoded else [])
        while pending or running is not None:
            room = batch_size - (len(running.index) if running is not None else 0)
            if pending and room >= min(len(pending), max(1, batch_size // 4)):
                take, pending = pending[:room], pending[room:]
                new = prefill(model, kv, take, [encoded[i][shared:] for i in take], pad)
                if running is None:
                    running = new
                else:
                    running.join(new, shared)
            assert running is not None
            chosen = running.logits.float().argmax(-1)
            picked = chosen.tolist()
            pieces = tokenizer.batch_decode([[t] for t in picked], skip_special_tokens=False)
            keep: list[int] = []
            for row, (i, token, piece) in enumerate(zip(running.index, picked, pieces, strict=True)):
                tokens[i].append(token)
                json_done = stop_at_json and json_ends[i].feed(piece)
                if json_done or token in ends or len(tokens[i]) >= max_new_tokens:
                    out[i] = settle(tokenizer, tokens[i], ends, pad, json_done)
                    done += 1
                else:
                    keep.append(row)
            if progress is not None and (done - reported >= batch_size or done == len(prompts) > reported):
                reported = done
                answered = {i: len(tokens[i]) for i, g in enumerate(out) if g is not None}
                rows = {running.index[row]: len(tokens[running.index[row]]) for row in keep}
                left = work_left(weights, answered, rows)
                progress(done, len(prompts), time.perf_counter() - started, left=left)
            if not keep:
                running = None
                continue
            order = running.select(keep, shared)
            r = running
            r.mask = torch.cat([r.mask, r.mask.new_ones((len(keep), 1))], dim=-1)
            step = model(input_ids=chosen[order][:, None], attention_mask=r.mask,
                         position_ids=r.next_pos[:, None], cache=r.cache, use_cache=True)  # fmt: skip
            r.logits, r.next_pos = step.logits[:, -1, :], r.next_pos + 1
    return [g for g in out if g is not None]
