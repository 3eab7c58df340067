#!/usr/bin/env bash
# The training job on one GPU (issue 3's GPU check), one step after another, each time-boxed:
#   1. throughput of this job's packing vs the research's pad-to-512 batching (1.5B architecture,
#      random weights, synthetic GMB-like lengths; MFU), sdpa and flex attention
#   2. a few LoRA, QLoRA (bitsandbytes NF4 + double quant) and DeepSpeed ZeRO-3 + CPU offload steps
#      through `launch recipe ... --cluster local`, the real job; the ZeRO-3 checkpoint is then
#      loaded with plain transformers (no DeepSpeed)
# Usage: bash benchmarks/gpu_check_train.sh   (wheels in .whl/ are installed first)
# A quick CPU rehearsal: SKIP_WHEELS=1 GPUS=0 ARCH_LAYERS=1 PACKED_LENGTH=512 STEPS=1 bash benchmarks/gpu_check_train.sh
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LAUNCH_HOME=/tmp/lh LAUNCH_RUNS=/tmp/runs TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 DS_BUILD_OPS=0
PY=${PY:-python3}
LAYERS=${ARCH_LAYERS:-}
PACKED=${PACKED_LENGTH:-4096}
STEPS=${STEPS:-10}
if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  ls .whl/deepspeed-*.tar.gz >/dev/null 2>&1 && \
    $PY -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .whl/deepspeed-*.tar.gz
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

END=$(( $(date +%s) + ${BUDGET_S:-540} ))
step() {  # step NAME LIMIT_S command...: at most LIMIT_S, and never past the overall budget
  local name=$1 limit=$2; shift 2
  local t0; t0=$(date +%s)
  local left=$(( END - t0 ))
  if [ "$left" -lt 15 ]; then echo "=== $name: skipped, budget spent"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  pkill -f "jobs.train --run-dir" 2>/dev/null; pkill -f "launcher.backends.local" 2>/dev/null
  echo "=== $name: rc=$rc, $(( $(date +%s) - t0 )) s"
  grep -v -E "^\[20|Warning|warn\(|Writing model|Loading weights" "$OUT/$name.log" | tail -n 8
}

layers_flag=${LAYERS:+--layers $LAYERS}
[ -z "${SKIP_THROUGHPUT:-}" ] && step throughput_sdpa 240 $PY benchmarks/train_throughput.py --arch 1.5b --data synthetic \
  --packed-length "$PACKED" --packed-rows 4 --steps "$STEPS" --attn sdpa $layers_flag

step random_model 120 $PY -m jobs.tiny random --like deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B \
  --out /tmp/m15b ${LAYERS:+--layers $LAYERS}

COMMON=(--cluster local --follow --force --set model.name_or_path=/tmp/m15b --set model.dtype=bf16
  --set resources.gpus_per_node=${GPUS:-1} --set train.deterministic=false --set tracking.wandb.mode=disabled
  --set data.max_train_samples=600 --set train.logging_steps=2 --set train.max_length=2048
  --set train.micro_batch_size=2)
step lora 200 $PY -m launcher.cli recipe tiny_ner "${COMMON[@]}" --set method=lora --set train.lr=1e-4 \
  --set "lora.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]" \
  --set train.max_steps=8 --set train.save_steps=8
step qlora 240 $PY -m launcher.cli recipe tiny_ner "${COMMON[@]}" --set method=qlora --set quantization=int4 \
  --set quantization.compute_dtype=bf16 --set train.lr=1e-4 --set train.max_steps=8 --set train.save_steps=8 \
  --set train.gradient_checkpointing=true
step zero3_offload 330 $PY -m launcher.cli recipe tiny_ner "${COMMON[@]}" --set distributed.strategy=deepspeed \
  --set distributed.zero_stage=3 --set distributed.offload_optimizer=cpu --set distributed.offload_params=cpu \
  --set train.max_steps=4 --set train.save_steps=4 --set train.max_length=1024 --set train.lr=1e-5
ckpt=$(ls -d /tmp/runs/*/checkpoints/checkpoint-4 2>/dev/null | tail -n 1)
step load_without_deepspeed 120 $PY -c "
import sys, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained('$ckpt', dtype=torch.bfloat16)
n = sum(p.numel() for p in m.parameters())
bad = sum(int(torch.isnan(p).any()) for p in m.parameters())
print(f'loaded {\"$ckpt\"} without DeepSpeed: {n/1e9:.3f}B parameters, {bad} tensors with NaN')
print('deepspeed imported:', 'deepspeed' in sys.modules)
"
for run in /tmp/runs/*/; do
  [ -f "$run/results/train.json" ] && cp "$run/results/train.json" "$OUT/train-$(basename "$run").json"
done
[ -z "${SKIP_THROUGHPUT:-}" ] && step throughput_flex 240 $PY benchmarks/train_throughput.py --arch 1.5b --data synthetic \
  --packed-length "$PACKED" --packed-rows 4 --steps "$STEPS" --attn flex_attention $layers_flag
echo "done"
