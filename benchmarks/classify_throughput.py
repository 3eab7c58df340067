"""Requests per second of the classify job against a local OpenAI-compatible server, by concurrency.

Starts the server on a free loopback port, `--server vllm` (the default: `cluster/dev/vllm-up.sh`,
vLLM on CPU, continuous batching, in its own virtualenv) or `--server llama` (`cluster/dev/llm-up.sh`,
llama-server, `--parallel` slots), then runs the real job as a user would, `launch recipe
agnews_zero_shot --cluster local --follow` with the research's other defaults (60 s timeout, no
response_format), on the same `--items` AG News items at each `--concurrency` (eval.api.max_concurrency),
with the response cache off, after one warm-up run. requests/s is the job's own `requests_per_s`
(requests sent over the time spent classifying, job start-up excluded). The last line is `ratio X.X`:
requests/s at concurrency 8 over concurrency 1. Against llama-server the job sends at most its slots
at once (GET /props total_slots), so above `--slots` nothing changes; vLLM has no such page and runs
up to `--slots` (its --max-num-seqs, default 64) together.

    python benchmarks/classify_throughput.py                     # vLLM, 48 items, 1 4 8 16
    python benchmarks/classify_throughput.py --server llama --slots 8 --concurrency 1 8

Measured one after the other on the shared two-core dev machine (other work on it), 48 items. vLLM
(load average 6.1 to 7.0): 0.252, 0.875, 1.243, 1.556 requests/s at 1, 4, 8, 16, ratio 4.9 (p50
latency 5.7, 6.0, 7.3, 10.2 s). llama-server, 4 slots (load 3.8 to 5.2): 0.430, 0.506, 0.458, 0.472,
ratio 1.1 (an earlier pair at load 5.3 to 6.7: vLLM ratio 4.9, llama-server 1.0). One sequence
alone is faster on llama.cpp (Q4_1 weights), but it has no batched kernel for Q4_1 on x86 and one
sequence already decodes at about half of a core's rate (llama-batched-bench: 63 tokens/s for one
sequence, 108 for eight); vLLM decodes the batch in one bf16 matrix product per layer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"
SERVERS = {  # --server: the scripts that start and stop it
    "vllm": ("cluster/dev/vllm-up.sh", "cluster/dev/vllm-down.sh"),
    "llama": ("cluster/dev/llm-up.sh", "cluster/dev/llm-down.sh"),
}


def launch(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "launcher.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"launch {args[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def classify(env: dict[str, str], url: str, items: int, concurrency: int) -> dict[str, Any]:
    """One `launch recipe agnews_zero_shot` run; its metrics.json."""
    out = launch(env, "recipe", "agnews_zero_shot", "--cluster", "local", "--follow",
                 "--set", f"eval.api.base_url={url}", "--set", f"model.name_or_path={MODEL}",
                 "--set", f"classify.sample={items}", "--set", "eval.cache=false",
                 "--set", f"eval.api.max_concurrency={concurrency}")  # fmt: skip
    run_dir = Path(env["LAUNCH_RUNS"]) / out.split()[0]
    metrics: dict[str, Any] = json.loads(next((run_dir / "results").glob("*/*/metrics.json")).read_text())
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--server", choices=sorted(SERVERS), default="vllm",
                        help="vllm: cluster/dev/vllm-up.sh; llama: cluster/dev/llm-up.sh")  # fmt: skip
    parser.add_argument("--slots", type=int, default=None, help="LLM_PARALLEL (default: the script's)")
    parser.add_argument("--threads", type=int, default=None, help="LLM_THREADS (llama only)")
    args = parser.parse_args()
    if 1 not in args.concurrency or 8 not in args.concurrency:
        sys.exit("--concurrency must include 1 and 8 (the ratio)")
    up_script, down_script = SERVERS[args.server]
    with tempfile.TemporaryDirectory(prefix="classify-bench-") as tmp:
        state = Path(tmp) / "llm"
        server_env = {**os.environ, "LLM_PORT": "0", "LLM_STATE": str(state)}
        for name, value in (("LLM_PARALLEL", args.slots), ("LLM_THREADS", args.threads)):
            if value is not None:
                server_env[name] = str(value)
        up = subprocess.run(["bash", str(ROOT / up_script)], env=server_env,
                            capture_output=True, text=True, timeout=3600)  # fmt: skip
        if up.returncode != 0:
            sys.exit(f"{up_script} failed:\n{up.stderr[-3000:]}")
        url = up.stdout.strip().splitlines()[-1]
        port = url.rsplit(":", 1)[1].split("/")[0]
        env = {**os.environ, "LAUNCH_HOME": f"{tmp}/home", "LAUNCH_RUNS": f"{tmp}/runs",
               "WANDB_MODE": "disabled"}  # fmt: skip
        env.pop("OPENAI_API_KEY", None)
        try:
            print(f"server {url}: {up.stderr.strip().splitlines()[-2].split('] ', 1)[-1]}")
            classify(env, url, min(8, args.items), 8)  # warm-up: every slot holds the prompt's prefix
            rates: dict[int, float] = {}
            print(f"{'concurrency':>11s} {'in flight':>9s} {'requests/s':>10s} {'seconds':>8s} "
                  f"{'p50 ms':>7s} {'failed':>6s} {'top-1':>6s} {'load avg':>8s}")  # fmt: skip
            for c in args.concurrency:
                m = classify(env, url, args.items, c)
                rates[c] = m["requests_per_s"]
                print(f"{c:11d} {m['concurrency']:9d} {m['requests_per_s']:10.3f} {m['seconds']:8.1f} "
                      f"{m['latency_ms']['p50'] or 0:7.0f} {m['failures']:6d} {m['top1']:6.3f} "
                      f"{os.getloadavg()[0]:8.2f}", flush=True)  # fmt: skip
        finally:
            subprocess.run(["bash", str(ROOT / down_script)], timeout=60, check=False,
                           env={**os.environ, "LLM_PORT": port, "LLM_STATE": str(state)})  # fmt: skip
    print(f"ratio {rates[8] / rates[1]:.1f}")


if __name__ == "__main__":
    main()
