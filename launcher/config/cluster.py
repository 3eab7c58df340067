"""Cluster profiles: everything site-specific, and the checks of a recipe against a profile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, PrivateAttr, model_validator

from launcher import paths
from launcher.config.duration import Duration, duration_seconds
from launcher.config.schema import EnvVars, Strict, validate
from launcher.config.yamlio import load_yaml
from launcher.errors import UserError

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe


class GpuSpec(Strict):
    type: str | None = None
    memory_gb: float = Field(gt=0)
    per_node: int = Field(ge=1)
    bf16: bool = False


class NodeSpec(Strict):
    cpus: int = Field(ge=1)
    mem_gb: float = Field(gt=0)


class LimitsSpec(Strict):
    max_nodes: int = Field(1, ge=1)
    max_time: Duration | None = None
    max_gpu_hours: float | None = Field(
        None, gt=0, description="the most GPU-hours one submission (a run, a sweep, a reeval) may be "
        "planned to use; more is refused unless --force"
    )  # fmt: skip


class SlurmSpec(Strict):
    partition: str
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gres_type: str | None = None
    gpu_request: Literal["gres", "gpus-per-node"] = "gres"
    setup: list[str] = Field(default_factory=list)
    extra: dict[str, str | int | bool | None] = Field(
        default_factory=dict, description="more sbatch options, e.g. {exclusive: true}"
    )
    python: str = "python"
    requeue: bool = Field(
        True, description="a preemption, a USR2 before the time limit or a lost node requeues the job, "
        "which resumes from its latest complete checkpoint; false: the job ends there"
    )  # fmt: skip
    rendezvous_port: int | None = Field(
        None, ge=1024, le=65535, description="torchrun's c10d port on a multi-rank job's first node "
        "(null: 29500 + job id % 2000, so two jobs on one node never share it)"
    )  # fmt: skip
    rendezvous_timeout_s: int = Field(
        300, ge=10, le=3600, description="how long a multi-rank job's nodes wait for each other at the "
        "rendezvous before the job fails with the reason"
    )  # fmt: skip
    poll_interval_s: float = Field(
        5.0, ge=0, le=600, description="how long one squeue answer is shared by every `launch` process "
        "of the user on this machine (0: none; `launch status --fresh` asks in any case)"
    )  # fmt: skip


class RaySpec(Strict):
    """`address`: local (a head on this machine, started when none answers), http://host:8265 (the
    Jobs API) or ray://host (mapped to http://host:<dashboard_port>). `num_cpus`/`num_gpus`: what a
    head the launcher starts offers (null: node.cpus or all CPUs; detected GPUs). `working_dir`:
    upload the project with each job, or `shared` (the same path on every node). `python`: the
    interpreter on the nodes (null: this one for a head on this machine, else `python`)."""

    address: str = "local"
    num_cpus: int | None = Field(None, ge=1)
    num_gpus: int | None = Field(None, ge=0)
    dashboard_port: int = Field(8265, ge=1, le=65535)
    working_dir: Literal["upload", "shared"] = "upload"
    python: str | None = None


class LocalSpec(Strict):
    gpu_ids: list[int] | None = Field(None, description="GPUs this backend may hand out; null = all")
    python: str | None = None


class ProfileWandb(Strict):
    mode: Literal["online", "offline", "auto"] = Field(
        "auto",
        description="whether this cluster's compute nodes reach W&B: online; offline (the job logs to "
        "files, `launch sync --wandb [--follow]` sends them from the login node); auto (the job tries "
        "W&B once, briefly, and logs offline when it does not answer). A recipe's tracking.wandb.mode "
        "other than auto wins",
    )


class ProfileTracking(Strict):
    wandb: ProfileWandb = Field(default_factory=ProfileWandb)


class ClusterProfile(Strict):
    name: str
    description: str | None = None
    backend: Literal["local", "slurm", "ray"]
    gpu: GpuSpec | Literal["auto"] | None = None
    node: NodeSpec | None = None
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    slurm: SlurmSpec | None = None
    ray: RaySpec | None = None
    local: LocalSpec | None = None
    env: EnvVars = Field(default_factory=dict)
    tracking: ProfileTracking = Field(default_factory=ProfileTracking)

    _source: str = PrivateAttr("<cluster>")

    @property
    def source(self) -> str:
        return self._source

    @model_validator(mode="after")
    def _sections(self) -> ClusterProfile:
        for section in ("slurm", "ray", "local"):
            if getattr(self, section) is not None and section != self.backend:
                raise ValueError(
                    f"{section}: section given but backend is {self.backend}; "
                    f"remove it or set backend: {section}"
                )
        if self.backend == "slurm" and self.slurm is None:
            raise ValueError("slurm: backend slurm needs a slurm section with at least a partition")
        if self.backend == "ray" and self.ray is None:
            self.ray = RaySpec()
        if self.backend == "local" and self.local is None:
            self.local = LocalSpec()
        if self.gpu == "auto" and self.backend != "local":
            raise ValueError("gpu: 'auto' detection works for backend local only")
        return self

    @property
    def gpus(self) -> GpuSpec | None:
        """The GPU spec, detecting this machine's GPUs when the profile says `gpu: auto`."""
        if self.gpu == "auto":
            return detect_local_gpus(self.local.gpu_ids if self.local else None)
        return self.gpu


def detect_local_gpus(gpu_ids: list[int] | None = None) -> GpuSpec | None:
    """GPUs of this machine from nvidia-smi (no torch); None when there are none."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.total,compute_cap",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line]
    if gpu_ids is not None:
        rows = [r for r in rows if int(r[0]) in gpu_ids]
    if not rows:
        return None
    memory = min(float(r[2]) for r in rows) / 1024
    bf16 = all(float(r[3]) >= 8.0 for r in rows)
    return GpuSpec(type=rows[0][1], memory_gb=round(memory, 1), per_node=len(rows), bf16=bf16)


def load_cluster(ref: str | Path) -> ClusterProfile:
    """Load a cluster profile by name or path; errors are UserErrors."""
    path = paths.resolve("clusters", str(ref))
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    profile = validate(ClusterProfile, data, str(path))
    profile._source = str(path)
    return profile


def _uses_bf16(recipe: Recipe) -> str | None:
    if recipe.model.dtype == "bf16":
        return "model.dtype"
    if recipe.quantization.mode != "none" and recipe.quantization.compute_dtype == "bf16":
        return "quantization.compute_dtype"
    return None


def check_fit(recipe: Recipe, profile: ClusterProfile) -> None:
    """Raise a UserError when the recipe asks for what the profile cannot give."""
    res, at, name = recipe.resources, recipe.at, profile.name
    gpu = profile.gpus
    if res.gpus_per_node > 0 and gpu is None:
        raise UserError(
            f"{at('resources.gpus_per_node')}: {res.gpus_per_node} but cluster '{name}' has no GPUs; "
            "valid: 0 (run on CPU with --set resources.gpus_per_node=0) or a GPU cluster"
        )
    if gpu is not None:
        if res.gpus_per_node > gpu.per_node:
            raise UserError(
                f"{at('resources.gpus_per_node')}: {res.gpus_per_node} is more than the "
                f"{gpu.per_node} GPUs per node of cluster '{name}'; valid: 0-{gpu.per_node}"
            )
        if res.gpu_memory_gb is not None and res.gpu_memory_gb > gpu.memory_gb:
            raise UserError(
                f"{at('resources.gpu_memory_gb')}: {res.gpu_memory_gb:g} is more than the "
                f"{gpu.memory_gb:g} GB of the GPUs of cluster '{name}'"
            )
        if res.gpu_type is not None and gpu.type is not None and res.gpu_type != gpu.type:
            raise UserError(
                f"{at('resources.gpu_type')}: '{res.gpu_type}' is not offered by cluster '{name}'; "
                f"valid: {gpu.type}"
            )
        key = _uses_bf16(recipe)
        if key and res.gpus_per_node > 0 and not gpu.bf16:
            raise UserError(
                f"{at(key)}: bf16 is not supported by the GPUs of cluster '{name}' "
                f"({gpu.type or 'no bf16'}); valid: fp16, fp32 or auto"
            )
    if res.nodes > profile.limits.max_nodes:
        raise UserError(
            f"{at('resources.nodes')}: {res.nodes} is more than cluster '{name}' allows; "
            f"valid: 1-{profile.limits.max_nodes}"
        )
    if res.nodes > 1 and profile.backend == "local":
        raise UserError(f"{at('resources.nodes')}: {res.nodes} but backend local runs on one node; valid: 1")
    max_time = profile.limits.max_time
    if max_time is not None and res.seconds > duration_seconds(max_time):
        raise UserError(
            f"{at('resources.time')}: {res.time} is longer than the {max_time} limit of cluster '{name}'"
        )
    if profile.node is not None:
        cpus = res.cpus_per_gpu * res.ranks
        if cpus > profile.node.cpus:
            what = "GPUs" if res.gpus_per_node else f"rank{'s' * (res.ranks != 1)}"
            raise UserError(
                f"{at('resources.cpus_per_gpu')}: {res.cpus_per_gpu} x {res.ranks} "
                f"{what} = {cpus} CPUs, more than the {profile.node.cpus} of a node of '{name}'"
            )
        if res.mem_gb is not None and res.mem_gb > profile.node.mem_gb:
            raise UserError(
                f"{at('resources.mem_gb')}: {res.mem_gb:g} is more than the {profile.node.mem_gb:g} GB "
                f"of a node of cluster '{name}'"
            )
