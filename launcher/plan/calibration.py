"""Every measured or fitted number the planner uses, each with where it comes from.

The measurements are in the repository: `tests/fixtures/h200_memory.json` (peak
`torch.cuda.max_memory_allocated` of the 1.5B and 7B DeepSeek distills on one H200, full
fine-tune, LoRA and generation) and `tests/fixtures/h200_throughput.json` (tokens/s and
sequences/s of the 1.5B architecture on the same H200). `tests/unit/test_plan.py` replans every case
of both files and checks the planner against them.
"""

from __future__ import annotations

GIB = 1024**3

# ----------------------------------------------------------------------------- memory overhead
# Outside max_memory_allocated, added to the allocated peak to give what nvidia-smi shows.
CONTEXT_GIB = 0.6  # CUDA context + cuBLAS workspaces, torch 2.x on Ampere/Hopper (nvidia-smi - reserved)
NCCL_GIB = 0.5  # NCCL communicator buffers when several GPUs take part (NCCL_BUFFSIZE 4 MiB x channels)
DEEPSPEED_GIB = 1.0  # DeepSpeed's reduce / all-gather buckets at reduce_bucket_size "auto"
FRAGMENTATION = 0.05  # caching allocator: reserved / allocated - 1 on the h200_memory.json cases
ZERO_BUFFER_FACTOR = 1.5  # DeepSpeed's `additional_buffer_factor` default in its ZeRO estimators

# ----------------------------------------------------------------------------- offloaded checkpointing
# axolotl's `gradient_checkpointing: offload` moves each checkpointed layer input to pinned CPU
# memory in the forward pass and prefetches it back one layer ahead in the backward pass: two
# layer inputs are on the GPU at a time.
OFFLOAD_CKPT_LAYERS_ON_GPU = 2

# ----------------------------------------------------------------------------- training time
# A training micro-step costs its FLOPs at KERNEL_MFU of the GPU's peak plus STEP_MS_PER_LAYER
# per layer (kernel launches, optimizer, Trainer). Fitted to tests/fixtures/h200_throughput.json:
# 1.5B on one H200, 1,702 useful tokens/s padded 2x512 seed-style, 34,194 packed 4x4096 (MFU 0.37).
KERNEL_MFU = 0.51
STEP_MS_PER_LAYER = 5.2
INT4_MATMUL_EFFICIENCY = 0.6  # bitsandbytes NF4: dequantize-then-matmul runs at ~60% of a bf16 matmul

# ----------------------------------------------------------------------------- generation time
# HF generate, one decode step: the most of DECODE_MS_PER_LAYER[0] + [1] * min(1, batch / 64) per
# layer, the weights read at DECODE_BANDWIDTH_SHARE of HBM bandwidth, and its FLOPs at
# DECODE_FLOPS_SHARE of peak. Fitted to tests/fixtures/h200_throughput.json `generate`
# (0.63, 20.68 and 79.86 sequences/s at batch 1, 64 and 256; prompt 90, 64 new tokens).
DECODE_MS_PER_LAYER = (0.9, 0.85)
DECODE_BANDWIDTH_SHARE = 0.7
DECODE_FLOPS_SHARE = 0.5
# bitsandbytes inference kernels per decode step, relative to bf16: LLM.int8's outlier
# decomposition is ~4x slower (Dettmers et al. 2022, "LLM.int8()", section 5); NF4 ~1.5x.
QUANT_DECODE_SLOWDOWN = {"int8": 4.0, "int4": 1.5}

# ----------------------------------------------------------------------------- host transfers
# Pinned host<->device copy bandwidth per direction, per GPU, by PCIe generation of an x16 link:
# 80% of the link rate (15.75 / 31.5 / 63 GB/s for gen 3 / 4 / 5), which is what CUDA's
# bandwidthTest reports on such links. DeepSpeed ZeRO offload and offloaded checkpointing move
# their bytes over it; the planner counts the transfers as not overlapped with compute (an upper
# bound: DeepSpeed overlaps part of them).
PCIE_GB_S = {3: 12.6, 4: 25.2, 5: 50.4}
# DeepSpeedCPUAdam is bound by host memory bandwidth: one AdamW update reads and writes the fp32
# master weight, m and v, reads the fp32 gradient and writes the 16-bit copy back (34 bytes per
# parameter). HOST_MEMORY_GB_S is a conservative effective bandwidth of one node's DRAM (half a
# two-socket DDR4-3200 server's 200 GB/s STREAM figure): an assumption, not a measurement.
CPU_ADAM_BYTES_PER_PARAM = 34
HOST_MEMORY_GB_S = 100.0
