"""Linear layers with bf16 weights prepacked once into oneDNN's blocked layout, for the HF engine on a
CPU under bf16 autocast.

    packed = pack_linears(model, rows=32)       # the number of Linears replaced; 0 where unsupported

`F.linear` on bf16 CPU tensors hands oneDNN a plain [out, in] weight, which it reorders into its
blocked layout on every call. Packed once, the same matmuls take two thirds of the time at SmolLM2's
shapes and 32 rows (x86 with AMX; benchmarks/eval_throughput.py --engine hf-prefix measures the
loop). These are the two oneDNN ops Inductor's CPU weight-prepacking pass emits for a frozen
compiled model; torch.compile itself is not used because compiling a model costs minutes on two
cores at every evaluation. The products are the same to bf16 rounding, not to the bit (oneDNN may
split the sums differently), so a few greedy answers differ: the benchmark counts them and scores
both.
"""

from __future__ import annotations

from typing import Any

import torch


class PackedLinear(torch.nn.Module):
    """A Linear's weight (and bias) in bf16, the weight prepacked for oneDNN; inputs of any leading
    shape are cast to bf16, as autocast casts them; outputs are bf16, as under autocast."""

    def __init__(self, linear: torch.nn.Linear, rows: int) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().to(torch.bfloat16)
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight, rows))
        bias = linear.bias.detach().to(torch.bfloat16) if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bf16 oneDNN-packed"


def supported() -> bool:
    """True where this torch has oneDNN's linear ops and the CPU runs bf16 matmuls natively."""
    mkldnn: Any = torch.ops.mkldnn
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(mkldnn._is_mkldnn_bf16_supported()) and hasattr(mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


def pack_linears(model: torch.nn.Module, rows: int) -> int:
    """Replace every fp32 or bf16 Linear of `model` by a PackedLinear (weights laid out for `rows`
    rows at a time; any number works); returns how many. A Linear tied to the input embeddings (the
    output layer) gets a bf16 copy of its own; the embeddings stay as they are."""
    if not supported():
        return 0
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is torch.nn.Linear and child.weight.dtype in (torch.float32, torch.bfloat16)
    ]
    for parent, name, child in swaps:
        setattr(parent, name, PackedLinear(child, rows))
    return len(swaps)
