"""Slurm backend: sbatch scripts rendered by submitit, job arrays, checkpoint-and-requeue on USR2.

Rendering goes through submitit's own sbatch renderer (`submitit.slurm.slurm._make_sbatch_string`,
what `SlurmExecutor` writes beside its logs). The script runs the job under
`srun --ntasks-per-node=1`: `python -m jobs.<job> --run-dir DIR` for one process, or, for a train
job on several GPUs or nodes, one torchrun per node with c10d rendezvous on the head node.

Preemption and time limits (`--signal=B:USR2@90`, `--requeue`): Slurm signals the batch shell.
Its trap notes the request and forwards USR2 to srun, which delivers it to every process of the
step on every node: the job itself, or torchrun's workers (torchrun ignores USR2: by default it
would die of it and take its workers down mid-checkpoint). The job saves a checkpoint and exits 3.
Once the step is over the shell runs `scontrol requeue $SLURM_JOB_ID` when the step exited 3 (a
USR2 sent straight to the step, `scancel -s USR2`) or failed after a USR2 (torchrun reports its
workers' 3 as 1). Slurm restarts the job with `SLURM_RESTART_COUNT` one higher; output files are
opened in append mode, and the job resumes from its latest complete checkpoint.

Status is one batched `squeue -t all` query for all job ids (the controller's live view, with
restart counts), mapped through `SLURM_STATES`. Ids it no longer knows (ended more than
`MinJobAge`, 300 s by default, ago) come from one `sacct -D` query. Accounting alone would not do:
slurmdbd lags the controller by seconds, so sacct still says PENDING for a job that runs.
`explain()` and `restarts()` answer from what `status()` fetched. A query that takes longer than
`LAUNCH_SLURM_TIMEOUT` (10 s) is killed (its whole process group) and the runs keep the states last
seen. A pending reason in `NEVER_STARTS_REASONS` is shown as "will never start: ...".
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import paths
from launcher.backends.base import NEVER_STARTS, Backend, JobState, Request
from launcher.backends.follow import follow_files
from launcher.backends.slurm.commands import SUBMIT_TIMEOUT, SlurmRefused, SlurmSilent, parse_sbatch
from launcher.backends.slurm.commands import call as _call
from launcher.backends.slurm.commands import run as _run
from launcher.backends.spec import LaunchSpec, multi_node_kinds
from launcher.config.cluster import ClusterProfile, SlurmSpec
from launcher.config.recipe import duration_seconds
from launcher.errors import UserError, choices_text, did_you_mean
from launcher.shell import export_line

REQUEUE_EXIT = 3
SIGNAL = "B:USR2@90"
RDZV_BASE_PORT = 29500

SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "POWER_UP_NODE": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "SPECIAL_EXIT": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "LAUNCH_FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "PREEMPTED": JobState.PREEMPTED,
    "SUSPENDED": JobState.PREEMPTED,
    "STOPPED": JobState.PREEMPTED,
}
"""Every Slurm job state (sacct and squeue spelling) and what it means here. Requeue states are
pending: the job will run again. Held jobs stay pending until someone releases them."""


def map_state(slurm_state: str) -> JobState:
    """`CANCELLED by 0` -> cancelled; a name not in SLURM_STATES -> unknown."""
    words = slurm_state.split()
    return SLURM_STATES.get(words[0].upper(), JobState.UNKNOWN) if words else JobState.UNKNOWN


_FOLDED = re.compile(r"^(\d+)_\[([^\]]+)\]$")


def expand_job_ids(field: str) -> list[str]:
    """`7_[1-3,5%2]` (pending array tasks folded into one record) -> 7_1 7_2 7_3 7_5; else [field]."""
    m = _FOLDED.match(field.strip())
    if not m:
        return [field.strip()]
    base, ranges = m.group(1), m.group(2).split("%")[0]
    ids: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        ids += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return ids


@dataclass
class SlurmInfo:
    """What the scheduler says about one job (or array task)."""

    state: str
    reason: str = ""
    exit_code: str = ""
    nodes: str = ""
    restarts: int = 0

    @property
    def job_state(self) -> JobState:
        return map_state(self.state)


NEVER_STARTS_REASONS: dict[str, str] = {
    "PartitionConfig": "no node of the partition has that many CPUs, GPUs or that much memory",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionTimeLimit": "a longer time than the partition allows",
    "BadConstraints": "no node has the requested features",
    "InvalidAccount": "the account is not valid",
    "InvalidQOS": "the QOS is not valid",
    "DependencyNeverSatisfied": "a job it depends on ended the wrong way",
}
"""Pending reasons that do not resolve by waiting (Slurm's "Job Reason Codes"): the job stays
queued until someone changes it. ReqNodeNotAvail is not here: it ends when the nodes return."""


RESTARTED = frozenset({"REQUEUED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"})
"""States of an earlier `sacct -D` record of a job that Slurm then ran again (with --requeue)."""


def parse_sacct(text: str) -> dict[str, SlurmInfo]:
    """`sacct -n -P -X -D -o JobID,State,ExitCode,Reason,NodeList`: the latest record per job, with
    restarts = the earlier records that ended in a requeue. An earlier record that ended any other
    way belongs to another job that had the same id (ids restart when Slurm's state is reset)."""
    infos: dict[str, SlurmInfo] = {}
    folded: set[str] = set()
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5 or not fields[0]:
            continue
        job_field, state, exit_code, reason, nodes = fields[:5]
        if "[" in job_field:
            for job_id in expand_job_ids(job_field):
                if job_id not in infos:
                    infos[job_id] = SlurmInfo(state, reason, exit_code, nodes)
                    folded.add(job_id)
            continue
        earlier = infos.get(job_field)
        requeued = earlier is not None and job_field not in folded and earlier.state in RESTARTED
        restarts = earlier.restarts + 1 if earlier is not None and requeued else 0
        infos[job_field] = SlurmInfo(state, reason, exit_code, nodes, restarts)
        folded.discard(job_field)
    return infos


def parse_squeue(text: str) -> dict[str, SlurmInfo]:
    """`squeue -h -r -t all -O JobArrayID:|,State:|,Reason:|,RestartCnt:|,NodeList:|,exit_code:|`;
    the exit code (a wait status there) becomes sacct's `code:signal`."""
    infos: dict[str, SlurmInfo] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 4 or not fields[0]:
            continue
        fields += [""] * (6 - len(fields))
        restarts = int(fields[3]) if fields[3].isdigit() else 0
        status = fields[5]
        exit_code = f"{int(status) >> 8}:{int(status) & 0x7F}" if status.isdigit() else ""
        for job_id in expand_job_ids(fields[0]):
            infos[job_id] = SlurmInfo(fields[1], fields[2], exit_code, fields[4], restarts)
    return infos


@dataclass(frozen=True)
class NodeShape:
    """One line of `sinfo`: `count` nodes with these GPUs, CPUs and memory (MB) each."""

    count: int
    gpus: int
    cpus: int
    mem_mb: int


@dataclass
class Partition:
    """One partition as `sinfo` reports it."""

    name: str
    gpu_types: set[str]
    gpus_per_node: int
    nodes: int
    max_seconds: int | None
    shapes: list[NodeShape] = field(default_factory=list)


_GPU_GRES = re.compile(r"(?:^|,)gpu(?::([^:,(]+))?:(\d+)")
SINFO_FORMAT = "%R|%G|%D|%l|%c|%m"


def _leading_int(text: str) -> int | None:
    """`32` or `32+` (sinfo's "at least") -> 32; anything else -> None (not known)."""
    found = re.match(r"\d+", text.strip())
    return int(found.group()) if found else None


def parse_sinfo(text: str) -> dict[str, Partition]:
    """`sinfo -h -o '%R|%G|%D|%l|%c|%m'`: partitions with their GPU types, GPUs per node, nodes,
    time limit and the node shapes (GPUs, CPUs, memory per node). A shape whose CPUs or memory
    sinfo does not give (an older 4-field answer) is not recorded."""
    parts: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4:
            continue
        name, gres, count, limit = fields[:4]
        part = parts.setdefault(name, Partition(name, set(), 0, 0, _limit_seconds(limit)))
        nodes = int(count) if count.isdigit() else 0
        part.nodes += nodes
        gpus = 0
        for gpu_type, found in _GPU_GRES.findall(gres):
            if gpu_type and not gpu_type.isdigit():
                part.gpu_types.add(gpu_type)
            gpus = max(gpus, int(found))
        part.gpus_per_node = max(part.gpus_per_node, gpus)
        cpus, mem = (_leading_int(f) for f in [*fields, "", ""][4:6])
        if cpus is not None and mem is not None:
            part.shapes.append(NodeShape(nodes, gpus, cpus, mem))
    return parts


def _limit_seconds(limit: str) -> int | None:
    try:
        return duration_seconds(limit)
    except ValueError:
        return None  # infinite, n/a


def slurm_time(seconds: int) -> str:
    """`HH:MM:SS` (hours may pass 24), what `--time` reads."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _mem(gb: float) -> str:
    return f"{int(gb)}G" if gb == int(gb) else f"{round(gb * 1024)}M"


def launch_command(spec: LaunchSpec, python: str) -> str:
    """The shell words srun runs on every node (single-quoted parts expand there, not in the shell)."""
    if spec.torchrun is None:
        return shlex.join(spec.command(python))
    inner = (
        f'trap "" USR2; exec {shlex.quote(python)} -m torch.distributed.run --nnodes "$SLURM_NNODES" '
        f'--nproc-per-node {spec.torchrun.nproc_per_node} --node-rank "$SLURM_NODEID" '
        '--rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d --rdzv-endpoint "$HEAD:$RDZV_PORT" '
        f"-m {spec.module} {shlex.join(spec.args)}"
    )
    return f"bash -c {shlex.quote(inner)}"


def _exports(spec: LaunchSpec) -> list[str]:
    return [export_line(k, v) for k, v in spec.env.items()]


@dataclass(frozen=True)
class SlurmPayload:
    """The keyword arguments of submitit's renderer (the script's #SBATCH lines)."""

    sbatch: dict[str, Any]


def _step_lines(srun: str, command: str, torchrun: bool) -> list[str]:
    """Run the step in the background so the USR2 trap fires at once; requeue on exit 3."""
    head = [
        'export HEAD="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"',
        f"export RDZV_PORT=$(({RDZV_BASE_PORT} + SLURM_JOB_ID % 2000))",
    ]
    return [
        'echo "[launch] job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0}, on $SLURM_JOB_NODELIST"',
        *(head if torchrun else []),
        "requeue=0",
        """trap 'requeue=1; kill -USR2 "$step" 2>/dev/null' USR2""",
        f"{srun} {command} &",
        "step=$!",
        'wait "$step"; rc=$?',
        'while [ "$rc" -gt 128 ] && kill -0 "$step" 2>/dev/null; do wait "$step"; rc=$?; done',
        f'if [ "$rc" -eq {REQUEUE_EXIT} ] || {{ [ "$requeue" -eq 1 ] && [ "$rc" -ne 0 ]; }}; then',
        '    echo "[launch] step exited $rc after USR2: requeueing job $SLURM_JOB_ID" >&2',
        '    scontrol requeue "$SLURM_JOB_ID" && exit 0',
        "fi",
        'exit "$rc"',
    ]


class SlurmBackend(Backend[SlurmPayload]):
    name = "slurm"

    def __init__(self, profile: ClusterProfile) -> None:
        super().__init__(profile)
        self._info: dict[str, SlurmInfo] = {}
        self._asked: set[str] = set()

    @property
    def spec(self) -> SlurmSpec:
        assert self.profile.slurm is not None
        return self.profile.slurm

    # ------------------------------------------------------------------ rendering

    def sbatch_options(self, job: LaunchSpec) -> dict[str, Any]:
        """Keyword arguments of submitit's renderer for this job (the script's #SBATCH lines)."""
        spec = self.spec
        options: dict[str, Any] = {
            "job_name": job.run_id,
            "partition": spec.partition,
            "account": spec.account,
            "qos": spec.qos,
            "constraint": spec.constraint,
            "nodes": job.nodes,
            "ntasks_per_node": 1,
            "cpus_per_task": job.cpus_per_task,
            "mem": _mem(job.mem_gb) if job.mem_gb else None,
            "time": slurm_time(job.time_s),
            "wckey": None,
        }
        if job.gpus_per_node:
            gpus = job.gpus_per_node
            typed = f"{spec.gres_type}:{gpus}" if spec.gres_type else str(gpus)
            if spec.gpu_request == "gres":
                options["gres"] = f"gpu:{typed}"
            else:
                options["gpus_per_node"] = typed
        return options

    def _render(self, options: dict[str, Any], logs: Path, pattern: str, body: list[str], **kw: Any) -> str:
        """submitit's script; the profile's `slurm.extra` options (`mail_type` or `mail-type`)
        are added, and replace a rendered option of the same name; `false`/`null` ones are dropped."""
        from submitit.slurm.slurm import _make_sbatch_string

        named = dict(options)
        extra: dict[str, Any] = {
            "output": f"{logs}/{pattern}.out",
            "error": f"{logs}/{pattern}.err",
            "open-mode": "append",
            "signal": SIGNAL,
            "requeue": True,
        }
        for key, value in self.spec.extra.items():
            if value is None or value is False:
                continue
            if key.replace("-", "_") in named:
                named[key.replace("-", "_")] = value
            else:
                extra[key.replace("_", "-")] = value
        text: str = _make_sbatch_string(
            command="\n".join(body), folder=logs, setup=list(self.spec.setup) or None,
            use_srun=False, additional_parameters=extra, **named, **kw,
        )  # fmt: skip
        return text if text.endswith("\n") else text + "\n"

    @staticmethod
    def _srun(job: LaunchSpec) -> str:
        return f"srun --ntasks-per-node=1 --cpus-per-task={job.cpus_per_task}"

    @staticmethod
    def _check_shape(job: LaunchSpec) -> None:
        if job.nodes > 1 and not job.multi_node:
            raise UserError(
                f"{job.source}: resources.nodes: {job.nodes} but job '{job.job}' runs on one "
                f"node; valid: 1 (only {', '.join(multi_node_kinds())} jobs span nodes)"
            )

    def translate(self, job: LaunchSpec) -> tuple[str, SlurmPayload]:
        self._check_shape(job)
        body = [
            f"# recipe-launcher run {job.run_id}: recipe {job.recipe_name} on cluster {job.cluster}",
            f"cd {shlex.quote(str(paths.PROJECT_ROOT))} || exit 1",
            *_exports(job),
            *_step_lines(self._srun(job), launch_command(job, self.spec.python), job.torchrun is not None),
        ]
        options = self.sbatch_options(job)
        return self._render(options, job.logs_dir, "%j", body), SlurmPayload(options)

    def array_script(self, requests: Sequence[Request[SlurmPayload]], max_parallel: int) -> str:
        """One job array for N runs that ask for the same resources; task i runs request i.

        Output goes to `<runs>/.slurm-arrays/<first run id>/%a/logs/%A_%a.out`, where `%a` is a
        link to task a's run directory (made by `submit_array`), so each task logs in its own run.
        """
        if not requests:
            raise ValueError("an array needs at least one request")
        jobs = [r.spec for r in requests]
        for job in jobs:
            self._check_shape(job)
        shapes = {job.run_id: self._shape(job) for job in jobs}
        first = shapes[jobs[0].run_id]
        odd = [rid for rid, shape in shapes.items() if shape != first]
        if odd:
            raise UserError(
                f"array: run {odd[0]} asks for other resources than {jobs[0].run_id}; "
                "the tasks of one Slurm array share one set of #SBATCH options"
            )
        options = {**self.sbatch_options(jobs[0]), "job_name": self._array_name(jobs)}
        cases: list[str] = ['case "$SLURM_ARRAY_TASK_ID" in']
        for index, job in enumerate(jobs):
            cases += [f"    {index})", *(f"        {line}" for line in _exports(job))]
            cases += [f"        set -- {launch_command(job, self.spec.python)}", "        ;;"]
        cases += ['    *) echo "[launch] no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 2 ;;', "esac"]
        torchrun = any(job.torchrun is not None for job in jobs)
        body = [
            f"# recipe-launcher array of {len(jobs)} runs: task i runs case i",
            f"cd {shlex.quote(str(paths.PROJECT_ROOT))} || exit 1",
            *cases,
            *_step_lines(self._srun(jobs[0]), '"$@"', torchrun),
        ]
        logs = self._links_dir(jobs) / "%a" / "logs"
        parallel = max(1, min(max_parallel, len(jobs)))
        return self._render(options, logs, "%A_%a", body, map_count=len(jobs), array_parallelism=parallel)

    def _shape(self, job: LaunchSpec) -> dict[str, Any]:
        return {k: v for k, v in self.sbatch_options(job).items() if k != "job_name"}

    @staticmethod
    def _array_name(jobs: Sequence[LaunchSpec]) -> str:
        recipes = {job.recipe_name for job in jobs}
        return f"{recipes.pop()}-array" if len(recipes) == 1 else "launch-array"

    @staticmethod
    def _links_dir(jobs: Sequence[LaunchSpec]) -> Path:
        return jobs[0].run_dir.parent / ".slurm-arrays" / jobs[0].run_id

    # ------------------------------------------------------------------ submitting

    def check(self, requests: Sequence[Request[SlurmPayload]]) -> None:
        """What only the scheduler knows: the partition exists and offers the GPUs, nodes and time."""
        spec, source = self.spec, self.profile.source
        partitions = parse_sinfo(_call(["sinfo", "-h", "-o", SINFO_FORMAT], "sinfo"))
        part = partitions.get(spec.partition)
        if part is None:
            raise UserError(
                f"{source}: slurm.partition: '{spec.partition}' is not a partition of this Slurm cluster"
                f"{did_you_mean(spec.partition, partitions)}; valid: {choices_text(sorted(partitions))}"
            )
        for request in requests:
            res, recipe = request.spec, request.spec.source
            if res.gpus_per_node and spec.gres_type and spec.gres_type not in part.gpu_types:
                valid = choices_text(sorted(part.gpu_types)) or "none (the partition has no typed GPUs)"
                raise UserError(
                    f"{source}: slurm.gres_type: '{spec.gres_type}' is not offered by partition "
                    f"'{part.name}'; valid: {valid}"
                )
            if res.gpus_per_node > part.gpus_per_node:
                raise UserError(
                    f"{recipe}: resources.gpus_per_node: {res.gpus_per_node} is more than the "
                    f"{part.gpus_per_node} GPUs per node of partition '{part.name}'; "
                    f"valid: 0-{part.gpus_per_node}"
                )
            if res.nodes > part.nodes:
                raise UserError(
                    f"{recipe}: resources.nodes: {res.nodes} is more than the {part.nodes} nodes of "
                    f"partition '{part.name}'; valid: 1-{part.nodes}"
                )
            if part.max_seconds is not None and res.time_s > part.max_seconds:
                raise UserError(
                    f"{recipe}: resources.time: {res.time} is longer than the "
                    f"{slurm_time(part.max_seconds)} limit of partition '{part.name}'"
                )
            problem = _shape_shortfall(res, part)
            if problem:
                raise UserError(f"{recipe}: {problem}")

    def _sbatch(self, script: Path) -> str:
        out = _call(["sbatch", "--parsable", str(script)], "sbatch", script.parent, SUBMIT_TIMEOUT)
        return parse_sbatch(out)

    def submit(self, request: Request[SlurmPayload]) -> str:
        """sbatch the run's submit.sh: the stored file is exactly what Slurm got."""
        script = request.spec.run_dir / "submit.sh"
        if script.read_text() != request.materialize():
            script.write_text(request.materialize())
        return self._sbatch(script)

    def submit_array(self, requests: Sequence[Request[SlurmPayload]], max_parallel: int) -> list[str]:
        """One `--array=0-(N-1)%P` job; every run's submit.sh becomes the array script. Ids `<A>_<i>`."""
        text = self.array_script(requests, max_parallel)
        jobs = [r.spec for r in requests]
        links = self._links_dir(jobs)
        links.mkdir(parents=True, exist_ok=True)
        for index, job in enumerate(jobs):
            link = links / str(index)
            if not link.is_symlink():
                link.symlink_to(Path("..", "..", job.run_dir.name))
            (job.run_dir / "submit.sh").write_text(text)
        array_id = self._sbatch(jobs[0].run_dir / "submit.sh")
        return [f"{array_id}_{index}" for index in range(len(jobs))]

    # ------------------------------------------------------------------ watching

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """One squeue (and, for ids it no longer knows, one sacct) for all ids. A query that does
        not answer within the timeout sets `unanswered`; those ids are unknown."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        self.unanswered = None
        self._asked.update(ids)
        try:
            infos = self._squeue(ids)
            missing = [j for j in ids if j not in infos]
            if missing:
                with suppress(SlurmRefused):  # accounting disabled: those jobs stay unknown
                    infos.update(self.accounting(missing))
        except SlurmSilent as err:
            self.unanswered = f"{err}; states as last seen"
            infos = {}
        self._info.update({j: infos[j] for j in ids if j in infos})
        return {j: infos[j].job_state if j in infos else JobState.UNKNOWN for j in ids}

    def accounting(self, job_ids: Sequence[str]) -> dict[str, SlurmInfo]:
        """What `sacct -D` (slurmdbd) says about these jobs: one query; UserError if it cannot answer."""
        bases = ",".join(dict.fromkeys(j.split("_")[0] for j in job_ids))
        fields = "JobID,State,ExitCode,Reason,NodeList"
        found = parse_sacct(_call(["sacct", "-n", "-P", "-X", "-D", "-o", fields, "-j", bases], "sacct"))
        return {j: found[j] for j in job_ids if j in found}

    def _squeue(self, job_ids: Sequence[str]) -> dict[str, SlurmInfo]:
        cmd = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids),
               "-O", "JobArrayID:|,State:|,Reason:|,RestartCnt:|,NodeList:|,exit_code:|"]  # fmt: skip
        proc = _run(cmd, "squeue")
        return parse_squeue(proc.stdout) if proc.returncode == 0 else {}  # 1: ids it no longer knows

    def _cached(self, job_id: str) -> SlurmInfo | None:
        """What the last status() that asked about `job_id` learnt; asks only about new ids."""
        if job_id not in self._asked:
            self.status([job_id])
        return self._info.get(job_id)

    def restarts(self, job_id: str) -> int | None:
        info = self._cached(job_id)
        return info.restarts if info else None

    def explain(self, job_id: str) -> str | None:
        info = self._cached(job_id)
        if info is None:
            return self.unanswered
        state = info.job_state
        again = f", restart {info.restarts}" if info.restarts else ""
        reason = info.reason if info.reason and info.reason != "None" else ""
        if state is JobState.PENDING:
            if info.restarts and reason in ("", "BeginTime"):
                return f"requeued, waiting to start again (restart {info.restarts})"
            why = NEVER_STARTS_REASONS.get(reason.split(",")[0].strip())
            if why:
                return f"{NEVER_STARTS}{reason} ({why}); `launch cancel` it and ask for less"
            return f"Slurm: {info.state}" + (f" ({reason})" if reason else "")
        if state is JobState.RUNNING:
            return f"Slurm: {info.state} on {info.nodes or '?'}{again}"
        code = f", exit code {info.exit_code}" if info.exit_code else ""
        return f"Slurm: {info.state}{code}{again}"

    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        files = [run_dir / "logs" / f"{job_id}.out", run_dir / "logs" / f"{job_id}.err"]
        yield from follow_files(lambda: files, self._ended(job_id) if follow else (lambda: True))

    def _ended(self, job_id: str, every: float = 2.0) -> Callable[[], bool]:
        """A done() for follow_files that asks the scheduler at most every `every` seconds."""
        last = {"at": 0.0, "done": False}

        def done() -> bool:
            if time.monotonic() - last["at"] >= every:
                last["at"] = time.monotonic()
                last["done"] = self.status([job_id])[job_id].is_terminal
            return bool(last["done"])

        return done

    def cancel(self, job_id: str) -> None:
        """scancel, then wait (up to 30 s) until the scheduler reports the job ended."""
        _call(["scancel", job_id], "scancel", timeout=SUBMIT_TIMEOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.status([job_id])[job_id].is_terminal:
            time.sleep(0.5)


def _shape_shortfall(res: LaunchSpec, part: Partition) -> str | None:
    """Why no `res.nodes` nodes of the partition each hold the task's GPUs, CPUs and memory, or None.
    Without node shapes (an older sinfo) nothing is said."""
    if not part.shapes:
        return None
    mem_mb = round(res.mem_gb * 1024) if res.mem_gb else 0
    gpu_ok = [s for s in part.shapes if s.gpus >= res.gpus_per_node]
    cpu_ok = [s for s in gpu_ok if s.cpus >= res.cpus_per_task]
    mem_ok = [s for s in cpu_ok if s.mem_mb >= mem_mb]
    where = f"partition '{part.name}'"
    if gpu_ok and not cpu_ok:
        most = max(s.cpus for s in gpu_ok)
        return (
            f"resources.cpus_per_gpu: the task needs {res.cpus_per_task} CPUs but the nodes of {where} "
            f"have at most {most}; valid: cpus_per_gpu x max(gpus_per_node, 1) <= {most}"
        )
    if cpu_ok and not mem_ok:
        most = max(s.mem_mb for s in cpu_ok) / 1024
        return (
            f"resources.mem_gb: {res.mem_gb:g} is more than the {most:g} GB of memory of any node of "
            f"{where} with {res.cpus_per_task} CPUs; valid: at most {most:g}"
        )
    fitting = sum(s.count for s in mem_ok)
    if gpu_ok and fitting < res.nodes:
        return (
            f"resources.nodes: {res.nodes} but only {fitting} nodes of {where} hold the task's GPUs, "
            f"CPUs and memory; valid: 1-{max(fitting, 1)}"
        )
    return None
