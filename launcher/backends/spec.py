"""LaunchSpec: what to start and with what resources, built once from (recipe, profile, run).

This is the only place besides the job-kind table that reads a recipe on behalf of a backend: the
backends translate a LaunchSpec into their own request (an sbatch script, a supervisor command, a
Ray job) and never look at the recipe. As torchx separates an AppDef from its schedulers, the spec
says *what* runs (the job module, its arguments, torchrun or not) and *how much* it needs; the
backend says *where*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from launcher.runs.run import Run


@dataclass(frozen=True)
class Torchrun:
    """One torchrun per node, `nproc_per_node` processes each."""

    nnodes: int
    nproc_per_node: int


@dataclass(frozen=True)
class LaunchSpec:
    """Backend-neutral: the command, its resources, its environment (secret-free) and its logs."""

    run_id: str
    run_dir: Path
    recipe_name: str
    source: str
    """The recipe file, for error messages that blame a resource key."""
    cluster: str
    job: str
    module: str
    args: tuple[str, ...]
    torchrun: Torchrun | None
    multi_node: bool
    """Whether the job kind may span nodes at all."""
    nodes: int
    gpus_per_node: int
    cpus_per_gpu: int
    """CPUs per GPU, or per rank of a CPU-only job."""
    ranks_per_node: int
    mem_gb: float | None
    time_s: int
    time: str
    """The duration as the recipe wrote it (for messages)."""
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path(".")
    """Where the job runs: the submitting process's working directory (the job's code comes from the
    snapshot on its PYTHONPATH, `env`, never from there)."""
    code_dir: Path | None = None
    """The snapshot directory the job's code comes from (what a backend that copies code uploads);
    None with --live-code."""

    @property
    def cpus_per_task(self) -> int:
        """CPUs for the one task per node: `cpus_per_gpu` for each rank (one per GPU)."""
        return self.cpus_per_gpu * self.ranks_per_node

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def command(self, python: str) -> list[str]:
        """`python -m jobs.<kind> --run-dir DIR`: one process, no torchrun."""
        return [python, "-m", self.module, *self.args]

    def local_command(self, python: str) -> list[str]:
        """The command on one machine: a standalone torchrun when the spec asks for one."""
        if self.torchrun is None:
            return self.command(python)
        return [
            python, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={self.torchrun.nproc_per_node}", "-m", self.module, *self.args,
        ]  # fmt: skip


@dataclass(frozen=True)
class FollowOn:
    """A launcher process to start after a job (`Backend.submit_after`): a run's `--then` chain.

    Backend-neutral like LaunchSpec: `python -m <module> <args>` with `env` (which puts the run's
    code first on PYTHONPATH) on top of the submitting environment, run in `workdir`, no GPU and at
    most one CPU; the backend picks the Python. The submitted script or spec goes in `folder` as
    `<stem>.sh` or `<stem>.yaml`, stdout and stderr are appended to `out` and `err`.
    """

    name: str
    """The job's name, unique among the runs: `<run id>-chain`."""
    title: str
    """The first comment line of what is submitted."""
    run_id: str
    """The run it follows."""
    run_dir: Path
    folder: Path
    stem: str
    module: str
    args: tuple[str, ...]
    env: dict[str, str]
    minutes: int
    """Its time limit, where the scheduler needs one."""
    workdir: Path = Path(".")
    code_dir: Path | None = None
    """As LaunchSpec.code_dir: the snapshot of the run it follows."""

    @property
    def out(self) -> Path:
        return self.folder / f"{self.stem}.out"

    @property
    def err(self) -> Path:
        return self.folder / f"{self.stem}.err"

    def command(self, python: str) -> list[str]:
        return [python, "-m", self.module, *self.args]


def job_env(run: Run) -> dict[str, str]:
    """Variables the job gets on top of the submitting environment (never secrets). Its code
    (launcher.runs.code) comes last: a PYTHONPATH the profile or recipe sets follows the snapshot."""
    env = {"LAUNCH_RUN_ID": run.run_id, "LAUNCH_RUN_DIR": str(run.run_dir), "PYTHONUNBUFFERED": "1"}
    env.update(run.profile.env)
    env.update(run.recipe.env)
    env.update(run.planned_code.env(env.get("PYTHONPATH")))
    return env


def build_spec(run: Run) -> LaunchSpec:
    """The spec of `run`. Pure: the backend decides what it can run (nodes, GPUs, time)."""
    from launcher.kinds.table import kind_of  # the job-kind table only to submit, not to ask a backend

    recipe, res = run.recipe, run.recipe.resources
    kind = kind_of(recipe)
    deepspeed = recipe.distributed.strategy == "deepspeed"
    # a self-evaluating kind scoring one checkpoint (eval.only) runs as one process
    wants_torchrun = kind.torchrun and not recipe.eval.only and (res.ranks > 1 or res.nodes > 1 or deepspeed)
    return LaunchSpec(
        run_id=run.run_id,
        run_dir=run.run_dir,
        recipe_name=recipe.name,
        source=recipe.source,
        cluster=run.profile.name,
        job=kind.name,
        module=kind.module,
        args=("--run-dir", str(run.run_dir)),
        torchrun=Torchrun(res.nodes, res.ranks) if wants_torchrun else None,
        multi_node=kind.multi_node,
        nodes=res.nodes,
        gpus_per_node=res.gpus_per_node,
        cpus_per_gpu=res.cpus_per_gpu,
        ranks_per_node=res.ranks,
        mem_gb=res.mem_gb,
        time_s=res.seconds,
        time=res.time,
        env=job_env(run),
        workdir=run.planned_code.workdir,
        code_dir=run.planned_code.snapshot.path if run.planned_code.snapshot else None,
    )


def multi_node_kinds() -> list[str]:
    from launcher.kinds.table import KINDS

    return [k.name for k in KINDS.values() if k.multi_node]
