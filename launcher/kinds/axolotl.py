"""The axolotl config a recipe with `engine: axolotl` asks for, rendered into the run directory.

The job writes the GMB split as input_output segments (prompt not learned, answer learned) to
`<run_dir>/data/` and runs `axolotl train <run_dir>/axolotl.yaml`. The keys follow axolotl 0.19's
schema (`tests/integration/venv/test_axolotl.py` validates every axolotl recipe's config with axolotl
itself); the Llama-4 ones follow axolotl's `examples/llama-4/scout-qlora-single-h100-flex.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from launcher import paths
from launcher.config.recipe import Recipe
from launcher.tracking.wandb_mode import wandb_mode


def axolotl_config(recipe: Recipe, run_dir: Path) -> dict[str, Any]:
    t, q, lora, m = recipe.train, recipe.quantization, recipe.lora, recipe.model
    dtype = m.dtype
    config: dict[str, Any] = {"base_model": m.name_or_path}
    if m.model_type:
        config["model_type"] = m.model_type
    if m.linearized_experts:
        config["llama4_linearized_experts"] = True  # axolotl's only linearized-experts family
    config.update(
        {
            "trust_remote_code": m.trust_remote_code,
            "datasets": [
                {"path": str(run_dir / "data" / "train.jsonl"), "type": "input_output", "ds_type": "json"}
            ],
            "val_set_size": 0.0,
            "dataset_prepared_path": str(run_dir / "data" / "prepared"),
            "output_dir": str(run_dir / "checkpoints"),
            "sequence_len": t.max_length,
            "sample_packing": t.packing,
            "pad_to_sequence_len": t.packing,  # static shapes: compiled flex attention compiles once
            "train_on_inputs": False,
            "micro_batch_size": t.micro_batch_size,
            "gradient_accumulation_steps": t.grad_accum,
            "num_epochs": t.epochs,
            "learning_rate": t.lr,
            "lr_scheduler": t.lr_scheduler,
            "warmup_ratio": t.warmup_ratio,
            "weight_decay": t.weight_decay,
            "optimizer": t.optim,  # the planner sizes the same key
            "gradient_checkpointing": bool(t.gradient_checkpointing),
            "save_steps": t.save_steps,
            "logging_steps": t.logging_steps,
            "seed": t.seed,
            "bf16": "auto" if dtype == "auto" else dtype == "bf16",
            "fp16": dtype == "fp16",
            "tf32": True,
        }
    )
    if t.gradient_checkpointing:
        config["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if t.gradient_checkpointing == "offload":
        config["activation_offloading"] = True  # axolotl 0.19's spelling of `gradient_checkpointing: offload`
    if m.attn_implementation != "auto":
        config["attn_implementation"] = m.attn_implementation
        if m.attn_implementation == "flex_attention":
            # uncompiled flex attention materialises the mask it exists to avoid (axolotl's example)
            config["torch_compile"] = True
            config["flex_attn_compile_kwargs"] = {"dynamic": False, "mode": "max-autotune-no-cudagraphs"}
    if t.cut_cross_entropy:  # loss without materialised logits; the planner counts none
        config["plugins"] = ["axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"]
        config["cut_cross_entropy"] = True
    if m.chat_template:
        config["chat_template"] = m.chat_template
    if m.special_tokens:
        config["special_tokens"] = dict(m.special_tokens)
    if t.max_steps:
        config["max_steps"] = t.max_steps
    if t.save_total_limit:
        config["save_total_limit"] = t.save_total_limit
    if recipe.method in ("lora", "qlora") and lora is not None:
        config.update(
            {
                "adapter": recipe.method,
                "lora_r": lora.r,
                "lora_alpha": lora.alpha,
                "lora_dropout": lora.dropout,
                "lora_target_modules": list(lora.target_modules),
            }
        )
    if q.mode == "int4":
        config["load_in_4bit"] = True
        config["bnb_config_kwargs"] = {
            "bnb_4bit_quant_type": q.quant_type,
            "bnb_4bit_use_double_quant": q.double_quant,
        }
    elif q.mode == "int8":
        config["load_in_8bit"] = True
    if recipe.distributed.strategy == "deepspeed":
        config["deepspeed"] = str(run_dir / "deepspeed.json")
    w = recipe.tracking.wandb
    mode = wandb_mode(w.mode)  # resolved: axolotl would leave "auto" to wandb, which then goes online
    if mode != "disabled":
        config.update({"wandb_project": w.project, "wandb_name": run_dir.name, "wandb_mode": mode})
        if w.entity:
            config["wandb_entity"] = w.entity
    return config


def axolotl_config_text(recipe: Recipe, run_dir: Path) -> str:
    source, project = Path(recipe.source), paths.find_project_root()
    builtin = paths.builtin_dir("recipes")
    if source.is_absolute() and source.is_relative_to(builtin):
        shown = f"built-in recipes/{source.relative_to(builtin)}"  # the same wherever it is installed
    elif project is not None and source.is_absolute() and source.is_relative_to(project):
        shown = str(source.relative_to(project))
    else:
        shown = str(source)
    header = f"# rendered by recipe-launcher from recipe {recipe.name} ({shown})\n"
    return header + yaml.safe_dump(axolotl_config(recipe, run_dir), sort_keys=False)
