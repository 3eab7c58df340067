#!/usr/bin/env bash
# The evaluation job on one GPU (issue 5's GPU check), each step time-boxed, results under $OUT:
#   1. jobs.evaluate's batched generation vs one sentence at a time on the DeepSeek-R1-Distill-
#      Qwen-1.5B architecture (random weights, bf16, 64 new tokens): the research measured 0.63
#      sentences/s one at a time and 79.9 at batch 256 on an H200 (calibration/h200_throughput.json)
#   2. the same through vLLM, when vllm is installed
#   3. the real job on a tiny model loaded in 8-bit and in 4-bit (bitsandbytes), via launch
# Usage: bash benchmarks/gpu_check_eval.sh     (a CPU rehearsal: SENTENCES=8 BATCH=4 SINGLE=1 ...)
set -u
OUT=${OUT:-/tmp/gpu-check-eval}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LAUNCH_HOME=/tmp/lh-eval LAUNCH_RUNS=/tmp/runs-eval WANDB_MODE=disabled
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"

step() {  # step NAME LIMIT_S command...
  local name=$1 limit=$2; shift 2
  local t0; t0=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc=$rc, $(( $(date +%s) - t0 )) s"
  grep -v -E "^\[20|Warning|warn\(|Writing model|Loading weights" "$OUT/$name.log" | tail -n 8
}

step throughput 240 $PY benchmarks/eval_throughput.py --arch 1.5b --dtype bf16 \
  --sentences "${SENTENCES:-1024}" --batch-size "${BATCH:-256}" --single "${SINGLE:-4}" \
  --max-new-tokens 64 --engine vllm --json "$OUT/eval_throughput.json"
for q in int8 int4; do
  step "tiny_$q" 120 $PY -m launcher.cli recipe tiny_ner_eval --cluster local --follow \
    --set quantization="$q" --set resources.gpus_per_node=1 --set eval.max_samples=16
done
find "$LAUNCH_RUNS" -name metrics.json -exec cp --parents {} "$OUT" \; 2>/dev/null
