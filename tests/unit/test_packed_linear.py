"""jobs.engines.packed: oneDNN-packed bf16 Linears compute what autocast's bf16 Linear computes, to
bf16 rounding, for inputs of any leading shape, with and without bias; the model keeps its input
embeddings; where oneDNN cannot run bf16 matmuls nothing is replaced."""

from __future__ import annotations

import torch

from jobs.engines.packed import PackedLinear, pack_linears, supported


def autocast_linear(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return linear(x)


def test_packed_linears_match_autocast_to_bf16_rounding() -> None:
    if not supported():
        assert pack_linears(torch.nn.Sequential(torch.nn.Linear(4, 4)), rows=2) == 0
        return
    torch.manual_seed(0)
    for bias in (True, False):
        linear = torch.nn.Linear(64, 96, bias=bias)
        packed = PackedLinear(linear, rows=8)
        for x in (torch.randn(8, 64), torch.randn(3, 5, 64), torch.randn(1, 64)):
            want, got = autocast_linear(linear, x), packed(x)
            assert got.dtype == torch.bfloat16 and got.shape == want.shape
            torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)


def test_pack_linears_replaces_every_linear_and_keeps_the_embeddings() -> None:
    body = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    model = torch.nn.ModuleDict(
        {"embed": torch.nn.Embedding(10, 8), "body": body, "head": torch.nn.Linear(8, 10, bias=False)}
    )
    model["head"].weight = model["embed"].weight  # tied, as SmolLM2's output layer
    if not supported():
        assert pack_linears(model, rows=4) == 0 and type(model["head"]) is torch.nn.Linear
        return
    assert pack_linears(model, rows=4) == 2
    assert isinstance(model["head"], PackedLinear) and isinstance(model["body"][0], PackedLinear)
    assert model["embed"].weight.dtype == torch.float32
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
