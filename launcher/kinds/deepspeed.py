"""The DeepSpeed config a recipe asks for, rendered into the run directory as deepspeed.json.

"auto" values are filled by the HF Trainer integration from the training arguments, so batch
sizes, learning rate and precision are stated once, in the recipe.
"""

from __future__ import annotations

from typing import Any

from launcher.config.recipe import Recipe

NVME_PATH = "/local_nvme"


def _offload(device: str) -> dict[str, Any]:
    if device == "nvme":
        return {"device": "nvme", "nvme_path": NVME_PATH, "pin_memory": True}
    return {"device": device, "pin_memory": True}


def deepspeed_config(recipe: Recipe) -> dict[str, Any]:
    """A ZeRO 0-3 config with the recipe's offload; 16-bit weights are gathered on save."""
    d = recipe.distributed
    zero: dict[str, Any] = {
        "stage": d.zero_stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if d.offload_optimizer != "none":
        zero["offload_optimizer"] = _offload(d.offload_optimizer)
    if d.zero_stage == 3:
        zero.update(
            {
                "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto",
                "stage3_max_live_parameters": 1_000_000_000,
                "stage3_max_reuse_distance": 1_000_000_000,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
        if d.offload_params != "none":
            zero["offload_param"] = _offload(d.offload_params)
    return {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto", "loss_scale": 0, "initial_scale_power": 16, "hysteresis": 2},
        "zero_optimization": zero,
        "steps_per_print": 1_000_000,
        "wall_clock_breakdown": False,
    }
