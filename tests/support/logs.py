"""What the `launch logs` tests share on every backend: a tiny_smoke run writing to both streams, and
what `launch logs --merged` shows of it."""

from __future__ import annotations

# 1.2 s steps: stdout and stderr lines 0.6 s apart, more than the index's 0.2 s samples and the
# 0.5 s polls of a follow, so their order is known
SMOKE_BOTH = ["--set", "train.max_steps=3", "--set", "env={SMOKE_STEP_SECONDS: '1.2', SMOKE_STDERR: '1'}"]

EXPECTED_MERGED = [
    "out| smoke job tiny_smoke: 3 steps, resuming from step 0",
    "out| CUDA_VISIBLE_DEVICES=",
    "out| step 1/3",
    "err| stderr after step 1",
    "out| step 2/3",
    "err| stderr after step 2",
    "out| step 3/3",
    "err| stderr after step 3",
    "out| saved checkpoint-3",
    "out| done",
]
