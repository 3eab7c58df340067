#!/usr/bin/env bash
# Both GPU checks in one call (a lent GPU machine's time is scarce): the training job's, then the
# evaluation job's. Logs of every step are packed into $OUT/gpu_check.tgz.
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
work=/tmp/gc
rm -rf "$work" && mkdir -p "$work/train" "$work/eval"
OUT="$work/train" BUDGET_S=${TRAIN_BUDGET_S:-330} bash benchmarks/gpu_check_train.sh 2>&1 | tee "$work/train.txt"
export PYTHONPATH=/tmp/site
OUT="$work/eval" timeout "${EVAL_BUDGET_S:-220}" bash benchmarks/gpu_check_eval.sh 2>&1 | tee "$work/eval.txt"
tar czf "$OUT/gpu_check.tgz" -C "$work" .
