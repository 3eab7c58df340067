"""Useful tokens/s and padding of the training job's batching against the research's way.

    python benchmarks/train_throughput.py                      # tiny model on CPU, GMB samples
    python benchmarks/train_throughput.py --arch 1.5b --data synthetic --packed-length 4096 \
        --packed-rows 4 --steps 20                             # on a GPU (random weights)

One run, same model, same optimizer (AdamW, fp32 master weights, autocast bf16 on GPU):
  research: every sample padded to 512 tokens, micro-batch 2 (the seed scripts);
  this job: samples packed first-fit into --packed-length bins, --packed-rows bins per micro-batch,
            position ids restarting per sample (no cross-sample attention, almost no padding).
Useful tokens = non-padding tokens. MFU = 6 * params * useful tokens/s / peak (989 TFLOPS bf16 for
H100/H200, from the calibration file's convention).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import torch

from jobs.sft import PackedCollator, PackedDataset, PadCollator, Sample, TokenStats, pack, tokenize

ARCHS = {
    "1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "7b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
}
PEAK_FLOPS = 989e12


def gmb_samples(n: int, tokenizer: Any) -> list[Sample]:
    from jobs.data.gmb import load_gmb
    from jobs.prompts import ner_example

    return [
        tokenize(tokenizer, ner_example(tokenizer, s.id, s.tokens, s.tags), 512)[0] for s in load_gmb()[:n]
    ]


def synthetic_samples(n: int, vocab: int, seed: int = 0) -> list[Sample]:
    """Lengths uniform in 80..200 (as the calibration), the last 30% of each sample learned."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(80, 200)
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        answer = int(length * 0.3)
        out.append(Sample(ids, [-100] * (length - answer) + ids[length - answer :]))
    return out


def build_model(
    arch: str, device: torch.device, attn: str, layers: int | None = None
) -> tuple[Any, Any | None]:
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    if arch == "tiny":
        from jobs.tiny.models import resolve

        path = resolve("tiny://qwen2-gmb")
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn, dtype=torch.float32)
        return model.to(device), AutoTokenizer.from_pretrained(path)
    from launcher.plan.tables import find_model

    arch_config = {k: v for k, v in find_model(ARCHS[arch])[1].items() if k != "model_type"}  # type: ignore[index]
    if layers:
        arch_config["num_hidden_layers"] = layers
    config = Qwen2Config(**arch_config, max_position_embeddings=32768)
    config._attn_implementation = attn
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model, None


def run(model: Any, batches: list[dict], device: torch.device, stats: TokenStats) -> dict[str, float]:
    """Train on `batches` (first 3 are warm-up); tokens/s over the rest."""
    model.train()
    model.config.use_cache = False
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                            fused=device.type == "cuda")  # fmt: skip
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    timed_real = timed_pad = 0
    start = 0.0
    for i, batch in enumerate(batches):
        if i == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 3:
            real = int(
                batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
            )
            timed_real += real
            timed_pad += batch["input_ids"].numel() - real
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "useful_tokens_per_s": timed_real / seconds,
        "padding_fraction": timed_pad / max(timed_real + timed_pad, 1),
        "steps": len(batches) - 3,
        "seconds": seconds,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny", choices=["tiny", *ARCHS])
    parser.add_argument("--data", default="gmb", choices=["gmb", "synthetic"])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per way (after 3 warm-up)")
    parser.add_argument("--packed-length", type=int, default=512)
    parser.add_argument("--packed-rows", type=int, default=2)
    parser.add_argument("--attn", default="sdpa", help="sdpa | flex_attention | eager")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers, for a quick check")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model, tokenizer = build_model(args.arch, device, args.attn, args.layers)
    params = sum(p.numel() for p in model.parameters())
    per_row = max(1, args.packed_length // 140)
    need = (args.steps + 3) * max(2, per_row * args.packed_rows) + 8
    if args.data == "gmb":
        if tokenizer is None:
            raise SystemExit("--data gmb needs a real tokenizer: use --arch tiny, or --data synthetic")
        samples = gmb_samples(need, tokenizer)
    else:
        samples = synthetic_samples(need, model.config.vocab_size)

    results = {}
    stats = TokenStats()
    pad = PadCollator(pad_id=0, stats=stats, pad_to=512)
    research = [pad([{"input_ids": s.input_ids, "labels": s.labels} for s in samples[i : i + 2]])
                for i in range(0, 2 * (args.steps + 3), 2)]  # fmt: skip
    results["research_pad512_mb2"] = run(model, research, device, stats)

    bins = PackedDataset(pack(samples, args.packed_length))
    flat = PackedCollator(0, stats, multiple_of=8)
    rows = [flat([bins[j] for j in range(i, i + args.packed_rows)])
            for i in range(0, args.packed_rows * (args.steps + 3), args.packed_rows)]  # fmt: skip
    results[f"packed_{args.packed_rows}x{args.packed_length}"] = run(model, rows, device, stats)

    ours, theirs = list(results.values())[1], results["research_pad512_mb2"]
    ratio = ours["useful_tokens_per_s"] / theirs["useful_tokens_per_s"]
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    summary = {"arch": args.arch, "params": params, "device": gpu, "attn": args.attn, "ways": results,
               "ratio": ratio}  # fmt: skip
    if device.type == "cuda":
        for r in results.values():
            r["mfu"] = 6 * params * r["useful_tokens_per_s"] / PEAK_FLOPS
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.arch} ({params / 1e6:.1f}M params) on {summary['device']}, attention {args.attn}")
    for name, r in results.items():
        mfu = f"  MFU {r['mfu']:.3f}" if "mfu" in r else ""
        rate, padding = r["useful_tokens_per_s"], r["padding_fraction"]
        print(f"  {name:24} {rate:10.0f} useful tokens/s  padding {padding:.1%}"
              f"  ({r['steps']} steps, {r['seconds']:.1f} s){mfu}")  # fmt: skip
    print(f"  ratio this job / research: {ratio:.2f}x")


if __name__ == "__main__":
    main()
