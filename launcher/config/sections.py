"""The sections of a recipe (model, lora, quantization, distributed, resources, data, train, eval,
tracking, artifacts): strict models with the research's defaults. `Recipe` (launcher/config/recipe.py)
puts them together with the job-kind rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from launcher.config.duration import Duration, duration_seconds
from launcher.config.schema import Strict
from launcher.tracking.wandb_mode import WandbRequest

Dtype = Literal["auto", "fp32", "bf16", "fp16"]
Offload = Literal["none", "cpu", "nvme"]
# The HF Trainer `optim` names a recipe may give (launcher/plan/workload.py sizes each one).
Optim = Literal[
    "adamw_torch", "adamw_torch_fused", "adamw_torch_8bit", "adamw_torch_4bit", "adamw_8bit",
    "adamw_bnb_8bit", "paged_adamw_8bit",
]  # fmt: skip


class ModelSpec(Strict):
    name_or_path: str
    dtype: Dtype = "auto"
    config: str | None = Field(
        None, description="local directory or config.json with the architecture (planner, tiny builds)"
    )
    revision: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    attn_implementation: Literal["auto", "sdpa", "flex_attention", "flash_attention_2", "eager"] = Field(
        "auto", description="auto: flex_attention for packed training on a GPU, else sdpa"
    )
    model_type: str | None = Field(
        None, description="the transformers class to load, e.g. Llama4ForConditionalGeneration (axolotl)"
    )
    linearized_experts: bool = Field(
        False, description="MoE experts stored as one linear layer each, so bitsandbytes quantizes them"
    )
    chat_template: str | None = Field(None, description="a named chat template, e.g. llama4 (axolotl)")
    special_tokens: dict[str, str] = Field(
        default_factory=dict, description="tokenizer special tokens to set: {pad_token: ..., eos_token: ...}"
    )


class LoraSpec(Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    bias: Literal["none", "all", "lora_only"] = "none"


class QuantSpec(Strict):
    mode: Literal["none", "int8", "int4"] = "none"
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Dtype = "auto"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data


class DistributedSpec(Strict):
    strategy: Literal["none", "ddp", "deepspeed"] = "none"
    zero_stage: int = Field(0, ge=0, le=3)
    offload_optimizer: Offload = "none"
    offload_params: Offload = "none"


class ResourcesSpec(Strict):
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(1, ge=0)
    gpu_memory_gb: float | None = Field(None, gt=0)
    gpu_type: str | None = None
    cpus_per_gpu: int = Field(4, ge=1, description="CPUs per GPU, or per rank on a CPU-only job")
    ranks_per_node: int | None = Field(
        None, ge=1, description="processes per node (torchrun --nproc-per-node); null: one per GPU, "
        "one on a CPU-only job. More than one on a CPU-only job trains with gloo"
    )  # fmt: skip
    mem_gb: float | None = Field(None, gt=0)
    time: Duration = "01:00:00"

    @model_validator(mode="after")
    def _one_rank_per_gpu(self) -> ResourcesSpec:
        if self.gpus_per_node and self.ranks_per_node not in (None, self.gpus_per_node):
            raise ValueError(
                f"resources.ranks_per_node: {self.ranks_per_node} but each of the {self.gpus_per_node} "
                f"GPUs per node takes one rank; valid: {self.gpus_per_node} or null"
            )
        return self

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def ranks(self) -> int:
        """Processes per node: one per GPU, else `ranks_per_node` (default 1)."""
        return self.gpus_per_node or self.ranks_per_node or 1

    @property
    def seconds(self) -> int:
        return duration_seconds(self.time)


class DataSpec(Strict):
    dataset: Literal["gmb", "ag_news", "csv"] = "gmb"  # csv: data.path, columns in classify.columns
    path: str | None = None
    test_size: float = Field(0.3, gt=0.0, lt=1.0)
    validation_size: float | int = Field(0.02, ge=0)
    seed: int = 42
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)


class TrainSpec(Strict):
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    lr: float = Field(2e-5, gt=0)
    micro_batch_size: int = Field(2, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(256, ge=8)
    packing: bool = True
    gradient_checkpointing: bool | Literal["offload"] = Field(
        False, description="offload: checkpointed layer inputs kept in CPU memory (axolotl engine)"
    )
    optim: Optim = Field(
        "adamw_torch_fused", description="the HF Trainer optimizer (TrainingArguments.optim); its default"
    )
    cut_cross_entropy: bool = Field(
        False, description="loss without stored logits (axolotl's CutCrossEntropyPlugin; axolotl engine)"
    )
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = Field(None, ge=1)
    save_step0: bool = Field(
        False, description="also save checkpoint-0, the model before training, so launch reeval scores it"
    )
    logging_steps: int = Field(10, ge=1)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    seed: int = 42
    deterministic: bool = False


class ApiSpec(Strict):
    base_url: str
    key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_concurrency: int = Field(8, ge=1)


class EvalSpec(Strict):
    split: Literal["test", "validation"] = "test"
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    max_samples: int | None = Field(None, ge=1)
    level: Literal["entity", "token"] = "entity"
    engine: Literal["hf", "ct2", "vllm", "openai"] = "hf"
    shots: int = Field(0, ge=0)
    confidence: Literal["none", "verbal", "logprobs", "auto"] = "auto"
    api: ApiSpec | None = None
    cache: bool = Field(True, description="classify: answers kept in $LAUNCH_HOME/cache, never asked twice")
    only: bool = Field(
        False,
        description="score model.name_or_path (a checkpoint) on the test split without training: how "
        "launch reeval runs a job kind that is its own evaluator (spacy, token_classification)",
    )
    results_dir: str | None = Field(
        None,
        description="where jobs.evaluate writes metrics.json and predictions.jsonl; default "
        "<run_dir>/results/<basename of model.name_or_path>/<recipe name>; reeval points it at the training "
        "run's results/<checkpoint>/<eval recipe name>",
    )


class WandbSpec(Strict):
    project: str = "recipe-launcher"
    entity: str | None = None
    mode: WandbRequest = "auto"
    group: str | None = None
    tags: list[str] = Field(default_factory=list)


class TrackingSpec(Strict):
    wandb: WandbSpec = Field(default_factory=WandbSpec)


class ArtifactsSpec(Strict):
    uri: str | None = Field(None, description="local directory or s3://bucket/prefix mirroring runs")
    upload_checkpoints: bool = True
