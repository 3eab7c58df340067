"""A model's sizes, from its config.json or the built-in table (`launcher/plan/tables.py`).

Decoders (Qwen2, Llama, Mistral, Mixtral, Qwen-MoE, Llama-4 MoE with its vision tower) and
encoders (BERT, ELECTRA, RoBERTa, DeBERTa, ...). Every linear layer carries the module path
peft sees, so `lora.target_modules` is matched the way peft matches it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.errors import UserError, choices_text
from launcher.plan import tables

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe

ENCODERS = frozenset(
    {"bert", "roberta", "electra", "deberta", "deberta-v2", "xlm-roberta", "distilbert", "camembert", "mpnet"}
)
UNTIED = frozenset(
    {"llama", "llama4", "llama4_text", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mistral", "mixtral"}
)
HEADS = frozenset({"lm_head", "classifier", "embed_project"})
TINY = "tiny://"
_REGEX = re.compile(r"[\[\]\\*+?$^(){}|]")


@dataclass(frozen=True)
class Linear:
    """One kind of linear layer: `count` instances of fan_in x fan_out in the whole model.

    `path`: the module's name as peft matches it (a suffix of the full name; `{i}` numbers an
    expert), or None where the weight is not an nn.Linear (3-D expert parameters).
    """

    name: str
    fan_in: int
    fan_out: int
    count: int
    path: str | None
    quantizable: bool = True

    @property
    def params(self) -> int:
        return self.fan_in * self.fan_out * self.count


@dataclass(frozen=True)
class Arch:
    """The sizes the planner needs, from a config.json or the built-in table."""

    name: str
    source: str
    family: str  # config.json's model_type
    encoder: bool
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    linears: tuple[Linear, ...]
    other_params: int  # embeddings, norms, biases: never quantized
    embedding_params: int
    extra_params: int = 0  # e.g. a vision tower: held in memory, idle in a text forward pass
    tied: bool = False
    moe_layers: int = 0
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    # transformers' Llama4TextMoe (and axolotl's linearized experts) run every token through every
    # expert, its input scaled by the router score (zero for the experts not chosen)
    dense_moe: bool = False

    @property
    def experts_computed(self) -> int:
        """Experts each token's forward pass computes: top-k, or all of them in a dense MoE."""
        return self.experts if self.dense_moe else self.top_k

    @property
    def total_params(self) -> int:
        return sum(lin.params for lin in self.linears) + self.other_params + self.extra_params

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    @property
    def experts_linear(self) -> bool:
        """Whether the routed experts are nn.Linear layers (quantizable, LoRA-targetable)."""
        return any(lin.path is not None for lin in self.linears if lin.name.startswith("expert_"))

    @property
    def head_params(self) -> int:
        """Parameters of the output matmul (the LM head, or a token classifier)."""
        return sum(lin.params for lin in self.linears if lin.name in ("lm_head", "classifier")) or (
            self.vocab * self.hidden if self.tied else 0
        )

    def matmul_params(self, experts: int) -> int:
        """Matmul parameters one token passes through when `experts` routed experts run."""
        total = 0
        for lin in self.linears:
            if lin.name.startswith("expert_"):
                total += lin.fan_in * lin.fan_out * self.moe_layers * experts
            else:
                total += lin.params
        return total + (self.vocab * self.hidden if self.tied and not self.encoder else 0)

    @property
    def active_matmul_params(self) -> int:
        """Matmul parameters one token needs (routed experts: top-k of them)."""
        return self.matmul_params(self.top_k)

    @property
    def computed_matmul_params(self) -> int:
        """Matmul parameters one token's forward pass multiplies (all experts in a dense MoE)."""
        return self.matmul_params(self.experts_computed)

    @property
    def active_params(self) -> int:
        return self.active_matmul_params + self.other_params

    @property
    def largest_layer_params(self) -> int:
        """The largest module DeepSpeed ZeRO-3 gathers at once: a block, the embedding or the head."""
        per_block: dict[str, int] = {}
        for lin in self.linears:
            if lin.name in HEADS:
                continue
            moe = lin.name.startswith(("expert_", "shared_", "router"))
            mlp = lin.name in ("gate_proj", "up_proj", "down_proj")
            blocks = self.moe_layers if moe else (self.dense_layers if mlp else self.layers)
            kind = "moe" if moe else ("mlp" if mlp else "attn")
            per_block[kind] = per_block.get(kind, 0) + lin.params // max(blocks, 1)
        block = per_block.get("attn", 0) + max(per_block.get("mlp", 0), per_block.get("moe", 0))
        return max(block, self.embedding_params, self.head_params)

    def lora_targets(self, target_modules: list[str]) -> tuple[frozenset[str], list[str]]:
        """(names of the linears peft would wrap, targets that match none), peft's rules: a plain
        name matches a module whose name is it or ends in `.name`; a pattern is a regex searched
        in the module name; `all-linear` is every linear layer but the output head."""
        chosen: set[str] = set()
        unmatched: list[str] = []
        for target in target_modules:
            if target in ("all-linear", "all_linear"):
                hits = {lin.name for lin in self.linears if lin.path and lin.name not in HEADS}
            else:
                hits = {lin.name for lin in self.linears if lin.path and _peft_matches(target, lin.path)}
            chosen |= hits
            if not hits:
                unmatched.append(target)
        return frozenset(chosen), unmatched

    def lora_params(self, targets: frozenset[str], r: int) -> int:
        return sum(r * (lin.fan_in + lin.fan_out) * lin.count for lin in self.linears if lin.name in targets)


def _peft_matches(target: str, path: str) -> bool:
    name = "model.layers.0." + path.replace("{i}", "0")
    if _REGEX.search(target):
        return re.search(target, name) is not None
    return name == target or name.endswith("." + target)


def _get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def arch_from_config(cfg: dict[str, Any], name: str, source: str, linearized: bool = False) -> Arch:
    """Parse a Hugging Face config.json (Qwen2/Llama/Mistral/Mixtral/Llama-4 MoE, BERT-style
    encoders). `linearized`: Llama-4's experts are nn.Linear layers (axolotl's linearized copy;
    also when the name says so). A missing required key is a UserError naming `source`."""
    text_config = cfg.get("text_config")
    text: dict[str, Any] = text_config if isinstance(text_config, dict) else cfg
    family = str(text.get("model_type") or cfg.get("model_type") or "")

    def need(*keys: str) -> int:
        value = _get(text, *keys)
        if value is None:
            raise UserError(
                f"{source}: config.json has no '{keys[0]}'; the planner needs "
                "vocab_size, hidden_size, num_hidden_layers, num_attention_heads"
            )
        return int(value)

    vocab = need("vocab_size")
    h = need("hidden_size", "n_embd", "d_model", "dim")
    layers = need("num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = need("num_attention_heads", "n_head", "num_heads", "n_heads")
    inter = int(_get(text, "intermediate_size", "n_inner", "ffn_dim", "hidden_dim", default=4 * h))
    if family in ENCODERS or str(cfg.get("model_type")) in ENCODERS:
        return _encoder_arch(text, name, source, family, vocab, h, layers, heads, inter)
    kv_heads = int(_get(text, "num_key_value_heads", default=heads))
    head_dim = int(_get(text, "head_dim", default=h // heads))
    tied = bool(
        _get(text, "tie_word_embeddings", default=cfg.get("tie_word_embeddings", family not in UNTIED))
    )
    llama4 = family.startswith("llama4")
    mlp = "feed_forward" if llama4 else ("block_sparse_moe" if family == "mixtral" else "mlp")

    hq, kvd = heads * head_dim, kv_heads * head_dim
    linears = [
        Linear("q_proj", h, hq, layers, "self_attn.q_proj"),
        Linear("k_proj", h, kvd, layers, "self_attn.k_proj"),
        Linear("v_proj", h, kvd, layers, "self_attn.v_proj"),
        Linear("o_proj", hq, h, layers, "self_attn.o_proj"),
    ]
    bias = bool(_get(text, "attention_bias", default=family.startswith("qwen2")))
    biases = layers * (hq + 2 * kvd) if bias else 0

    experts = int(_get(text, "num_local_experts", "num_experts", "n_routed_experts", default=0))
    moe_layers = top_k = expert_inter = shared_inter = 0
    dense_inter = inter
    if experts:
        top_k = int(_get(text, "num_experts_per_tok", default=2))
        expert_inter = int(_get(text, "moe_intermediate_size", default=inter))
        shared_inter = int(_get(text, "shared_expert_intermediate_size", default=inter if llama4 else 0))
        step = int(_get(text, "interleave_moe_layer_step", "decoder_sparse_step", default=1))
        moe_layers = layers // step if step > 0 else 0
        moe_layers -= len(text.get("mlp_only_layers") or [])
        dense_inter = int(_get(text, "intermediate_size_mlp", default=inter)) if llama4 else inter
    dense = layers - moe_layers
    if dense:
        linears += [
            Linear("gate_proj", h, dense_inter, dense, f"{mlp}.gate_proj"),
            Linear("up_proj", h, dense_inter, dense, f"{mlp}.up_proj"),
            Linear("down_proj", dense_inter, h, dense, f"{mlp}.down_proj"),
        ]
    if moe_layers:
        n = moe_layers * experts
        linearized = linearized or bool(cfg.get("planner_linearized_experts")) or "linearized" in name.lower()
        paths = _expert_paths(family, mlp, linearized)
        linears += [
            Linear("expert_gate_proj", h, expert_inter, n, paths[0], quantizable=paths[0] is not None),
            Linear("expert_up_proj", h, expert_inter, n, paths[1], quantizable=paths[1] is not None),
            Linear("expert_down_proj", expert_inter, h, n, paths[2], quantizable=paths[2] is not None),
            Linear("router", h, experts, moe_layers, f"{mlp}.router" if llama4 else f"{mlp}.gate", False),
        ]
        if shared_inter:
            shared = f"{mlp}.shared_expert"
            linears += [
                Linear("shared_gate_proj", h, shared_inter, moe_layers, f"{shared}.gate_proj"),
                Linear("shared_up_proj", h, shared_inter, moe_layers, f"{shared}.up_proj"),
                Linear("shared_down_proj", shared_inter, h, moe_layers, f"{shared}.down_proj"),
            ]
    if not tied:
        linears.append(Linear("lm_head", h, vocab, 1, "lm_head", quantizable=False))
    embedding = vocab * h
    norms = layers * 2 * h + h
    return Arch(
        name=name,
        source=source,
        family=family,
        encoder=False,
        vocab=vocab,
        hidden=h,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=dense_inter,
        linears=tuple(linears),
        other_params=embedding + norms + biases,
        embedding_params=embedding,
        extra_params=_vision_params(cfg, h),
        tied=tied,
        moe_layers=moe_layers,
        experts=experts,
        top_k=top_k,
        expert_intermediate=expert_inter,
        shared_intermediate=shared_inter,
        dense_moe=llama4 and moe_layers > 0,
    )


def _expert_paths(family: str, mlp: str, linearized: bool) -> tuple[str | None, str | None, str | None]:
    """Module paths of one routed expert's gate, up and down projections."""
    if family.startswith("llama4"):  # hub checkpoints: 3-D gate_up_proj / down_proj parameters
        if not linearized:
            return None, None, None
        return tuple(f"{mlp}.experts.{p}_projs.{{i}}" for p in ("gate", "up", "down"))  # type: ignore[return-value]
    if family == "mixtral":
        return tuple(f"{mlp}.experts.{{i}}.{w}" for w in ("w1", "w3", "w2"))  # type: ignore[return-value]
    return tuple(f"{mlp}.experts.{{i}}.{p}_proj" for p in ("gate", "up", "down"))  # type: ignore[return-value]


def _vision_params(cfg: dict[str, Any], text_hidden: int) -> int:
    vision = cfg.get("vision_config")
    if not isinstance(vision, dict) or "hidden_size" not in vision:
        return 0
    h, i = int(vision["hidden_size"]), int(vision.get("intermediate_size", 4 * vision["hidden_size"]))
    layers = int(vision.get("num_hidden_layers", 0))
    proj_in = int(vision.get("projector_input_dim", h))
    proj_out = int(vision.get("projector_output_dim", proj_in))
    out = int(vision.get("vision_output_dim", proj_out))
    return layers * (4 * h * h + 2 * h * i) + 4 * h * proj_in + proj_in * proj_out + out * text_hidden


def _encoder_arch(
    text: dict[str, Any],
    name: str,
    source: str,
    family: str,
    vocab: int,
    h: int,
    layers: int,
    heads: int,
    inter: int,
) -> Arch:
    """BERT-style encoder with a token-classification head of tables.GMB_LABELS outputs; module
    paths as in BertLayer (attention.self.query, ..., intermediate.dense, output.dense)."""
    e = int(text.get("embedding_size") or h)
    positions = int(text.get("max_position_embeddings", 512))
    types = int(text.get("type_vocab_size", 2))
    linears = [
        Linear("q_proj", h, h, layers, "attention.self.query"),
        Linear("k_proj", h, h, layers, "attention.self.key"),
        Linear("v_proj", h, h, layers, "attention.self.value"),
        Linear("o_proj", h, h, layers, "attention.output.dense"),
        Linear("up_proj", h, inter, layers, "intermediate.dense"),
        Linear("down_proj", inter, h, layers, "output.dense"),
        Linear("classifier", h, tables.GMB_LABELS, 1, "classifier", quantizable=False),
    ]
    if e != h:
        linears.append(Linear("embed_project", e, h, 1, "embeddings_project", quantizable=False))
    embedding = (vocab + positions + types) * e + 2 * e
    other = embedding + layers * (5 * h + inter + 4 * h) + tables.GMB_LABELS
    return Arch(
        name=name,
        source=source,
        family=family,
        encoder=True,
        vocab=vocab,
        hidden=h,
        layers=layers,
        heads=heads,
        kv_heads=heads,
        head_dim=h // heads,
        intermediate=inter,
        linears=tuple(linears),
        other_params=other,
        embedding_params=embedding,
    )


@lru_cache(maxsize=64)
def _read_config(path: str, mtime: float) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the model's config.json: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: config.json is not a JSON object")
    return data


def _config_path(ref: str | None) -> Path | None:
    if not ref:
        return None
    if ref.startswith(TINY):
        return _tiny_config(ref[len(TINY) :])
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    if path.is_file():
        return path
    return None


def _tiny_config(name: str) -> Path | None:
    """The config.json of a tiny model already built into the cache (jobs/tiny/models.py's layout:
    `$XDG_CACHE_HOME/recipe-launcher/tiny/<name>-v<version>/`), newest version first."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recipe-launcher" / "tiny"
    built = sorted(base.glob(f"{name}-v*/config.json"), key=lambda p: p.parent.name, reverse=True)
    return built[0] if built else None


def resolve_arch(recipe: Recipe) -> Arch:
    """The recipe's architecture: a local config.json (model.config, model.name_or_path as a
    directory, or a tiny:// model already built) first, then the built-in table; neither is a
    UserError naming the key."""
    name = recipe.model.name_or_path
    # model.linearized_experts: the key the axolotl renderer reads, where the recipe has it
    linearized = bool(getattr(recipe.model, "linearized_experts", False))
    path = _config_path(recipe.model.config) or _config_path(name)
    if path is not None:
        config = _read_config(str(path), path.stat().st_mtime)
        return arch_from_config(config, name, str(path), linearized)
    if recipe.model.config:
        raise UserError(
            f"{recipe.source}: model.config: '{recipe.model.config}' is not a "
            "config.json or a directory holding one"
        )
    arch = _table_arch(name, linearized)
    if arch is None:
        raise UserError(
            f"{recipe.source}: model.name_or_path: '{name}' has no built-in architecture and no local "
            f"config.json, so its memory cannot be planned; known: "
            f"{choices_text(sorted(set(tables.MODELS)))}; or set model.config to a config.json"
        )
    return arch


@lru_cache(maxsize=32)
def _table_arch(name: str, linearized: bool) -> Arch | None:
    found = tables.find_model(name)
    if found is None:
        return None
    return arch_from_config(found[1], found[0], "built-in table", linearized)
