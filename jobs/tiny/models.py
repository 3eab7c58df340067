"""Tiny Qwen2- and Llama-4-architecture models with random weights and a tokenizer trained on GMB text.

    python -m jobs.tiny build [--name qwen2-gmb|llama4-gmb] [--out DIR]
    python -m jobs.tiny random --like deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --out DIR

`random` writes a real architecture (from the planner's built-in table) with random weights and
the tiny GMB tokenizer, for GPU checks on machines that cannot download the real weights.

Recipes name them `tiny://<name>`; jobs build them on first use into the cache
(`~/.cache/recipe-launcher/tiny/`), so nothing is ever downloaded. Same code paths as the real
models: AutoTokenizer, AutoModelForCausalLM, the chat template.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from jobs.data.gmb import cache_dir, load_gmb
from jobs.prompts import INSTRUCTION
from launcher.scoring.entities import bio_to_entities, target_json

VERSION = 1
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
# Llama-4's chat format and special tokens (pad <|finetune_right_pad|>, eos <|eot|>)
LLAMA4_CHAT_TEMPLATE = (
    "<|begin_of_text|>{% for m in messages %}<|header_start|>{{ m['role'] }}<|header_end|>\n\n"
    "{{ m['content'] }}<|eot|>{% endfor %}"
    "{% if add_generation_prompt %}<|header_start|>assistant<|header_end|>\n\n{% endif %}"
)
LLAMA4_SPECIALS = [
    "<|begin_of_text|>",
    "<|header_start|>",
    "<|header_end|>",
    "<|eot|>",
    "<|finetune_right_pad|>",
]


@dataclass(frozen=True, kw_only=True)
class Size:
    """A tiny Qwen2 model's shape, its BPE vocabulary and the std its weights are drawn with."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab: int = 2048
    init: float = 0.02


@dataclass(frozen=True, kw_only=True)
class Llama4Size(Size):
    """A tiny Llama-4 (Llama4ForCausalLM) model's shape; `init` is not used (the config's default)."""

    intermediate_size_mlp: int
    head_dim: int
    num_local_experts: int


SIZES: dict[str, Size] = {
    "qwen2-gmb": Size(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2),
    # both layers MoE, 2 routed experts (top-1) + the shared expert, as the Scout
    "llama4-gmb": Llama4Size(hidden_size=64, intermediate_size=128, intermediate_size_mlp=192,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             head_dim=16, num_local_experts=2),
    # head_dim 64 (128 / 2 heads), the head size vLLM's CPU attention backend runs; weights drawn
    # wider (std 0.1) so that greedy answers differ by prompt and position instead of one token
    "qwen2-gmb-h64": Size(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, init=0.1),
}  # fmt: skip
PREFIX = "tiny://"


def default_dir(name: str) -> Path:
    return cache_dir() / "tiny" / f"{name}-v{VERSION}"


def _corpus(limit: int = 20000) -> list[str]:
    texts = [INSTRUCTION]
    for sentence in load_gmb()[:limit]:
        texts.append(sentence.text)
        texts.append(target_json(bio_to_entities(sentence.tokens, sentence.tags)))
    return texts


def build(name: str = "qwen2-gmb", out: Path | None = None, seed: int = 0) -> Path:
    """Write tokenizer and random-weight model to `out` (atomically); return the directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    size = SIZES[name]
    llama4 = isinstance(size, Llama4Size)
    out = out or default_dir(name)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size.vocab, special_tokens=LLAMA4_SPECIALS if llama4 else SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    core.train_from_iterator(_corpus(), trainer=trainer)
    eos, pad = ("<|eot|>", "<|finetune_right_pad|>") if llama4 else ("<|im_end|>", "<|pad|>")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=eos, pad_token=pad, bos_token=None,
        unk_token=None, model_max_length=2048,
    )  # fmt: skip
    tokenizer.chat_template = LLAMA4_CHAT_TEMPLATE if llama4 else CHAT_TEMPLATE
    tokenizer.save_pretrained(tmp)

    torch.manual_seed(seed)
    if isinstance(size, Llama4Size):
        from transformers import Llama4ForCausalLM, Llama4TextConfig

        llama4_config = Llama4TextConfig(
            vocab_size=len(tokenizer), hidden_size=size.hidden_size, intermediate_size=size.intermediate_size,
            intermediate_size_mlp=size.intermediate_size_mlp, num_hidden_layers=size.num_hidden_layers,
            num_attention_heads=size.num_attention_heads, num_key_value_heads=size.num_key_value_heads,
            head_dim=size.head_dim, num_local_experts=size.num_local_experts, num_experts_per_tok=1,
            interleave_moe_layer_step=1, max_position_embeddings=2048, attention_chunk_size=2048,
            tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        )  # fmt: skip
        Llama4ForCausalLM(llama4_config).save_pretrained(tmp)
    else:
        from transformers import Qwen2Config, Qwen2ForCausalLM

        qwen2_config = Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=size.hidden_size, intermediate_size=size.intermediate_size,
            num_hidden_layers=size.num_hidden_layers, num_attention_heads=size.num_attention_heads,
            num_key_value_heads=size.num_key_value_heads, max_position_embeddings=2048,
            tie_word_embeddings=True, initializer_range=size.init, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        )  # fmt: skip
        Qwen2ForCausalLM(qwen2_config).save_pretrained(tmp)
    (tmp / "tiny.json").write_text(json.dumps({"name": name, "version": VERSION, "seed": seed}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def resolve(name_or_path: str) -> str:
    """`tiny://name` -> its local directory, built under a lock on first use; else unchanged."""
    if not name_or_path.startswith(PREFIX):
        return name_or_path
    from jobs.tiny import encoders as tiny_encoders

    name = name_or_path[len(PREFIX) :]
    if name not in SIZES and name not in tiny_encoders.ENCODERS:
        raise ValueError(
            f"unknown tiny model '{name}'; valid: {', '.join([*SIZES, *tiny_encoders.ENCODERS])}"
        )
    encoder = name in tiny_encoders.ENCODERS
    out = cache_dir() / "tiny" / f"{name}-v{tiny_encoders.VERSION}" if encoder else default_dir(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "tiny.json").exists():
            tiny_encoders.build(name, out) if encoder else build(name, out)
    return str(out)


def random_like(hub_name: str, out: Path, dtype: str = "bf16", layers: int | None = None) -> Path:
    """A Qwen2-family architecture of the built-in table with random weights, on the GPU if any."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from launcher.plan.tables import find_model

    found = find_model(hub_name)
    if found is None or found[1].get("model_type") != "qwen2":
        raise SystemExit(f"no Qwen2 architecture called {hub_name} in the built-in table")
    config = {k: v for k, v in found[1].items() if k != "model_type"}
    if layers:
        config["num_hidden_layers"] = layers
    tokenizer = AutoTokenizer.from_pretrained(resolve(PREFIX + "qwen2-gmb"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(Qwen2Config(**config, max_position_embeddings=32768))
    # @wraps(torch.nn.Module.to) on PreTrainedModel.to hides the bound `self` from type checkers
    model.to({"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype])  # type: ignore[arg-type]
    model.config.eos_token_id, model.config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "random"])
    parser.add_argument("--name", default="qwen2-gmb", choices=sorted(SIZES))
    parser.add_argument("--like", default="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "random":
        print(
            random_like(
                args.like, args.out or Path(f"random-{Path(args.like).name}"), args.dtype, args.layers
            )
        )
    else:
        print(build(args.name, args.out))
    return 0
