"""Slurm's batch scripts, rendered by submitit: one run, an array of runs, a follow-on job.

Rendering goes through submitit's own sbatch renderer, what `SlurmExecutor` writes beside its logs.
`sbatch_text` is the one place in the launcher that calls it: `_make_sbatch_string` is private to
submitit, so it was checked against submitit SUBMITIT_CHECKED (pyproject.toml pins the 1.5 line
from there; the golden scripts in tests/golden are what any other version must render byte for byte).

A run's script runs the job under `srun --ntasks-per-node=1`: `python -m jobs.<job> --run-dir DIR`
for one process, or, for a train job on several ranks or nodes, one torchrun per node with c10d
rendezvous on the first node. Its address is SLURM_LAUNCH_NODE_IPADDR, which srun sets in every task:
the address of the node srun runs on (the batch script's, node 0) as Slurm itself reaches it, so
neither DNS nor `scontrol` is needed on the nodes. The first node hosts the store (`is_host`) and
checks its port is free; the others wait for it to open (a bash probe: one `error:` line naming
node, address and port when it is taken or never opens), and torchrun fails its own wait after the
profile's `rendezvous_timeout_s`. A node
whose torchrun fails ends the step on every node (`srun --kill-on-bad-exit`), not at the time limit.
It `cd`s into the submitting working directory and exports the run's
code (PYTHONPATH=<its snapshot>, PYTHONSAFEPATH=1: launcher.runs.code), so the job, every requeue
of it (Slurm reruns the same script) and its torchrun workers run the code it was submitted with.

Preemption and time limits (`--signal=B:USR2@90`, `--requeue` unless the profile says
`slurm.requeue: false`): Slurm signals the batch shell.
Its trap notes the request and forwards USR2 to srun, which delivers it to every process of the
step on every node: the job itself, or torchrun's workers (torchrun ignores USR2: by default it
would die of it and take its workers down mid-checkpoint). The job saves a checkpoint and exits 3.
Once the step is over the shell runs `scontrol requeue $SLURM_JOB_ID` when the step exited 3 (a
USR2 sent straight to the step, `scancel -s USR2`) or failed after a USR2 (torchrun reports its
workers' 3 as 1). Slurm restarts the job with `SLURM_RESTART_COUNT` one higher; output files are
opened in append mode, and the job resumes from its latest complete checkpoint. A node that fails
under a job ends it NODE_FAIL, and Slurm requeues it the same way; with `requeue: false` both end
the job instead.

A follow-on job (a run's `--then` chain) is one CPU and 1 GB with `--dependency=afterok:<job>` and
`--kill-on-invalid-dep=yes`: it starts once that job completed, and Slurm cancels it when the job
ended any other way.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.backends.spec import FollowOn, LaunchSpec, multi_node_kinds
from launcher.config.cluster import SlurmSpec
from launcher.errors import UserError
from launcher.shell import export_line

SUBMITIT_CHECKED = "1.5.4"
"""The submitit version whose private `_make_sbatch_string` `sbatch_text` was checked against."""
REQUEUE_EXIT = 3
SIGNAL = "B:USR2@90"
RDZV_BASE_PORT = 29500
FOLLOW_ON_MEM = "1G"
JOB_VARIABLES = ("SLURM_", "SBATCH_", "SRUN_")
"""What a job inherits from the Slurm job that submitted it (memory, CPUs) and must not: a follow-on
job submits jobs of its own, so its script unsets these first."""


def sbatch_text(body: Sequence[str], folder: Path, setup: Sequence[str], **options: Any) -> str:
    """submitit's sbatch script: `options` as #SBATCH lines (sorted), `setup`, then `body`; the
    script runs `body` itself (no srun around it) and ends with a newline."""
    from submitit.slurm.slurm import _make_sbatch_string

    text: str = _make_sbatch_string(
        command="\n".join(body), folder=folder, setup=list(setup) or None, use_srun=False, **options
    )
    return text if text.endswith("\n") else text + "\n"


def slurm_time(seconds: int) -> str:
    """`HH:MM:SS` (hours may pass 24), what `--time` reads."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _mem(gb: float) -> str:
    return f"{int(gb)}G" if gb == int(gb) else f"{round(gb * 1024)}M"


RDZV_PROBE = """\
trap "" USR2
fail() {  # srun forwards a task's stderr after the fact: an immediate exit can end the step first
    echo "[launch] error: rendezvous: $*" >&2
    sleep 1
    exit 1
}
head="$SLURM_LAUNCH_NODE_IPADDR"
if [ -z "$head" ]; then
    fail "srun set no SLURM_LAUNCH_NODE_IPADDR on $SLURMD_NODENAME"
fi
if [ "$SLURM_NODEID" = 0 ]; then
    if timeout 2 bash -c ": >/dev/tcp/$head/$RDZV_PORT" 2>/dev/null; then
        fail "$head:$RDZV_PORT on the first node ($SLURMD_NODENAME) is taken by another process;" \
            "set slurm.rendezvous_port to a free port"
    fi
else
    waited=0
    until timeout 2 bash -c ": >/dev/tcp/$head/$RDZV_PORT" 2>/dev/null; do
        if [ "$waited" -ge "$RDZV_TIMEOUT" ]; then
            fail "node $SLURMD_NODENAME reached nothing at $head:$RDZV_PORT (the first node) in" \
                "$RDZV_TIMEOUT s: its torchrun did not start, or a firewall drops it"
        fi
        sleep 2; waited=$((waited + 2))
    done
fi
"""
"""Before torchrun, on each node: the head's address; on the head its port free, elsewhere open."""


def launch_command(spec: LaunchSpec, python: str) -> str:
    """The shell words srun runs on every node (single-quoted parts expand there, not in the shell)."""
    if spec.torchrun is None:
        return shlex.join(spec.command(python))
    inner = RDZV_PROBE + (
        f'exec {shlex.quote(python)} -m torch.distributed.run --nnodes "$SLURM_NNODES" '
        f"--nproc-per-node {spec.torchrun.nproc_per_node} "
        '--rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d --rdzv-endpoint "$head:$RDZV_PORT" '
        '--rdzv-conf "is_host=$((SLURM_NODEID == 0)),join_timeout=$RDZV_TIMEOUT,read_timeout=$RDZV_TIMEOUT" '
        f"-m {spec.module} {shlex.join(spec.args)}"
    )
    return f"bash -c {shlex.quote(inner)}"


def rendezvous_lines(slurm: SlurmSpec) -> list[str]:
    """The batch script's rendezvous settings, with a comment saying what they mean (the dry run shows it)."""
    fixed = slurm.rendezvous_port
    return [
        "# rendezvous: torchrun c10d at the first node's address as srun has it (SLURM_LAUNCH_NODE_IPADDR),",
        f"# port {fixed or f'{RDZV_BASE_PORT} + job id % 2000'}; nodes wait {slurm.rendezvous_timeout_s} s "
        "for each other",
        f"export RDZV_PORT={fixed or f'$(({RDZV_BASE_PORT} + SLURM_JOB_ID % 2000))'}",
        f"export RDZV_TIMEOUT={slurm.rendezvous_timeout_s}",
    ]


def _exports(env: dict[str, str]) -> list[str]:
    return [export_line(k, v) for k, v in env.items()]


def _cd(workdir: Path) -> str:
    return f"cd {shlex.quote(str(workdir))} || exit 1"


def _srun(job: LaunchSpec) -> str:
    bad_exit = " --kill-on-bad-exit=1" if job.torchrun is not None and job.nodes > 1 else ""
    return f"srun --ntasks-per-node=1 --cpus-per-task={job.cpus_per_task}{bad_exit}"


def _step_lines(slurm: SlurmSpec, srun: str, command: str, torchrun: bool) -> list[str]:
    """Run the step in the background so the USR2 trap fires at once; requeue on exit 3 (or, with
    `requeue: false`, say the job ends)."""
    if slurm.requeue:
        after = [
            '    echo "[launch] step exited $rc after USR2: requeueing job $SLURM_JOB_ID" >&2',
            '    scontrol requeue "$SLURM_JOB_ID" && exit 0',
        ]
    else:
        after = ['    echo "[launch] step exited $rc after USR2; slurm.requeue is false: the job ends" >&2']
    return [
        'echo "[launch] job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0}, on $SLURM_JOB_NODELIST"',
        *(rendezvous_lines(slurm) if torchrun else []),
        "requeue=0",
        """trap 'requeue=1; kill -USR2 "$step" 2>/dev/null' USR2""",
        f"{srun} {command} &",
        "step=$!",
        'wait "$step"; rc=$?',
        'while [ "$rc" -gt 128 ] && kill -0 "$step" 2>/dev/null; do wait "$step"; rc=$?; done',
        f'if [ "$rc" -eq {REQUEUE_EXIT} ] || {{ [ "$requeue" -eq 1 ] && [ "$rc" -ne 0 ]; }}; then',
        *after,
        "fi",
        'exit "$rc"',
    ]


def check_shape(job: LaunchSpec) -> None:
    """Refuse several nodes for a job kind that runs on one."""
    if job.nodes > 1 and not job.multi_node:
        raise UserError(
            f"{job.source}: resources.nodes: {job.nodes} but job '{job.job}' runs on one "
            f"node; valid: 1 (only {', '.join(multi_node_kinds())} jobs span nodes)"
        )


def sbatch_options(slurm: SlurmSpec, job: LaunchSpec) -> dict[str, Any]:
    """Keyword arguments of submitit's renderer for this job (the script's #SBATCH lines)."""
    options: dict[str, Any] = {
        "job_name": job.run_id,
        "partition": slurm.partition,
        "account": slurm.account,
        "qos": slurm.qos,
        "constraint": slurm.constraint,
        "nodes": job.nodes,
        "ntasks_per_node": 1,
        "cpus_per_task": job.cpus_per_task,
        "mem": _mem(job.mem_gb) if job.mem_gb else None,
        "time": slurm_time(job.time_s),
        "wckey": None,
    }
    if job.gpus_per_node:
        gpus = job.gpus_per_node
        typed = f"{slurm.gres_type}:{gpus}" if slurm.gres_type else str(gpus)
        if slurm.gpu_request == "gres":
            options["gres"] = f"gpu:{typed}"
        else:
            options["gpus_per_node"] = typed
    return options


def _render(
    slurm: SlurmSpec, options: dict[str, Any], logs: Path, pattern: str, body: list[str],
    more: dict[str, Any] | None = None, **kw: Any,
) -> str:  # fmt: skip
    """A run's script: requeue on USR2, logs appended to `<logs>/<pattern>.{out,err}`, `more` options;
    the profile's `slurm.extra` options (`mail_type` or `mail-type`) are added, and replace a rendered
    option of the same name; `false`/`null` ones are dropped."""
    named = dict(options)
    extra: dict[str, Any] = {
        "output": f"{logs}/{pattern}.out",
        "error": f"{logs}/{pattern}.err",
        "open-mode": "append",
        "signal": SIGNAL,
        "requeue" if slurm.requeue else "no-requeue": True,
        **(more or {}),
    }
    for key, value in slurm.extra.items():
        if value is None or value is False:
            continue
        if key.replace("-", "_") in named:
            named[key.replace("-", "_")] = value
        else:
            extra[key.replace("_", "-")] = value
    return sbatch_text(body, logs, slurm.setup, additional_parameters=extra, **named, **kw)


def job_script(slurm: SlurmSpec, job: LaunchSpec) -> tuple[str, dict[str, Any]]:
    """One run's sbatch script, and the renderer options it was made with."""
    check_shape(job)
    body = [
        f"# recipe-launcher run {job.run_id}: recipe {job.recipe_name} on cluster {job.cluster}",
        _cd(job.workdir),
        *_exports(job.env),
        *_step_lines(slurm, _srun(job), launch_command(job, slurm.python), job.torchrun is not None),
    ]
    options = sbatch_options(slurm, job)
    return _render(slurm, options, job.logs_dir, "%j", body), options


def links_dir(jobs: Sequence[LaunchSpec]) -> Path:
    """Where an array's task links live: `<runs>/.slurm-arrays/<first run id>/<task> -> its run`."""
    return jobs[0].run_dir.parent / ".slurm-arrays" / jobs[0].run_id


ARRAY_COMMENT = "launch-array:"


def array_comment(jobs: Sequence[LaunchSpec]) -> str:
    """`launch-array:<first run id>`, the array's links directory: unique, and found from any of its runs."""
    return ARRAY_COMMENT + jobs[0].run_id


def _array_name(jobs: Sequence[LaunchSpec]) -> str:
    recipes = {job.recipe_name for job in jobs}
    return f"{recipes.pop()}-array" if len(recipes) == 1 else "launch-array"


def array_script(
    slurm: SlurmSpec, jobs: Sequence[LaunchSpec], max_parallel: int, after: str | None = None
) -> str:
    """One job array for N runs that ask for the same resources; task i runs job i; with `after`,
    it starts once job `after` (the array before it) ended, however (`--dependency=afterany`).

    Output goes to `<runs>/.slurm-arrays/<first run id>/%a/logs/%A_%a.out`, where `%a` is a
    link to task a's run directory (made by the submit), so each task logs in its own run.
    """
    if not jobs:
        raise ValueError("an array needs at least one request")
    for job in jobs:
        check_shape(job)
    shapes = {job.run_id: _shape(slurm, job) for job in jobs}
    first = shapes[jobs[0].run_id]
    odd = [rid for rid, shape in shapes.items() if shape != first]
    if odd:
        raise UserError(
            f"array: run {odd[0]} asks for other resources than {jobs[0].run_id}; "
            "the tasks of one Slurm array share one set of #SBATCH options"
        )
    options = {**sbatch_options(slurm, jobs[0]), "job_name": _array_name(jobs)}
    options["comment"] = array_comment(jobs)  # finds the array again after an interrupted submit
    cases: list[str] = ['case "$SLURM_ARRAY_TASK_ID" in']
    for index, job in enumerate(jobs):
        cases += [f"    {index})", *(f"        {line}" for line in _exports(job.env))]
        cases += [f"        set -- {launch_command(job, slurm.python)}", "        ;;"]
    cases += ['    *) echo "[launch] no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 2 ;;', "esac"]
    torchrun = any(job.torchrun is not None for job in jobs)
    body = [
        f"# recipe-launcher array of {len(jobs)} runs: task i runs case i",
        _cd(jobs[0].workdir),
        *cases,
        *_step_lines(slurm, _srun(jobs[0]), '"$@"', torchrun),
    ]
    logs = links_dir(jobs) / "%a" / "logs"
    parallel = max(1, min(max_parallel, len(jobs)))
    more = {"dependency": f"afterany:{after}"} if after else None
    return _render(slurm, options, logs, "%A_%a", body, more, map_count=len(jobs), array_parallelism=parallel)


def _shape(slurm: SlurmSpec, job: LaunchSpec) -> dict[str, Any]:
    return {k: v for k, v in sbatch_options(slurm, job).items() if k != "job_name"}


def follow_on_script(slurm: SlurmSpec, request: FollowOn, after: str, python: str) -> str:
    """The script of `request`, held until job `after` completed (see the module docstring); the
    submitting job's Slurm variables are unset before the command runs."""
    unset = "|".join(f"{prefix}*" for prefix in JOB_VARIABLES)
    body = [
        f"# {request.title}: starts once job {after} completed",
        _cd(request.workdir),
        *_exports(request.env),
        f'for name in $(compgen -e); do case "$name" in {unset}) unset "$name" ;; esac; done',
        f"exec {shlex.join(request.command(python))}",
    ]
    return sbatch_text(
        body, request.folder, slurm.setup, job_name=request.name, partition=slurm.partition,
        account=slurm.account, qos=slurm.qos, nodes=1, ntasks_per_node=1, cpus_per_task=1,
        mem=FOLLOW_ON_MEM, time=request.minutes, wckey=None,
        additional_parameters={
            "output": str(request.out), "error": str(request.err), "open-mode": "append",
            "dependency": f"afterok:{after}", "kill-on-invalid-dep": "yes",
        },
    )  # fmt: skip
