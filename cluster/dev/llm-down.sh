#!/usr/bin/env bash
# Stop the LLM server llm-up.sh started on LLM_PORT (default 8077); `--all`: every one it started.
# Only processes recorded in llm-up.sh's pid files are signalled.
set -euo pipefail
STATE="${LLM_STATE:-/tmp/llm-dev}"
if [ "${1:-}" = "--all" ]; then
  files=("$STATE"/llm-*.pid)
else
  files=("$STATE/llm-${LLM_PORT:-8077}.pid")
fi
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    printf '[llm-down] stopped pid %s (%s)\n' "$pid" "$(basename "$f" .pid)" >&2
  fi
  rm -f "$f"
done
