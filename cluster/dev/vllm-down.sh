#!/usr/bin/env bash
# Stop the vLLM server vllm-up.sh started on LLM_PORT (default 8078); `--all`: every one it started.
# Only the process groups of pids recorded in vllm-up.sh's pid files are signalled (the API server
# leads its group; vLLM's engine and worker processes are in it).
set -euo pipefail
STATE="${LLM_STATE:-/tmp/llm-dev}"
if [ "${1:-}" = "--all" ]; then
  files=("$STATE"/vllm-*.pid)
else
  files=("$STATE/vllm-${LLM_PORT:-8078}.pid")
fi
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 -- "-$pid" 2>/dev/null && kill -KILL -- "-$pid"
    printf '[vllm-down] stopped pid %s (%s)\n' "$pid" "$(basename "$f" .pid)" >&2
  fi
  rm -f "$f"
done
