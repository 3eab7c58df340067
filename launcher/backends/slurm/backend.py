"""Slurm backend: submit, arrays and follow-on jobs with sbatch; status from squeue and sacct.

The scripts are rendered in `render` (through submitit), the queries' answers parsed in `parse`,
the commands run in `commands`.

Status is one batched `squeue --me -t all` query (the controller's live view, with restart counts),
mapped through `SLURM_STATES`, and its answer is shared for `slurm.poll_interval_s` by every `launch`
process of the user on this machine (`queue`). Ids it no longer knows (ended more than
`MinJobAge`, 300 s by default, ago) come from one `sacct -D` query. Accounting alone would not do:
slurmdbd lags the controller by seconds, so sacct still says PENDING for a job that runs.
`explain()` and `restarts()` answer from what `status()` fetched. A query that takes longer than
`LAUNCH_SLURM_TIMEOUT` (10 s) is killed (its whole process group) and the runs keep the states last
seen. A pending reason in `NEVER_STARTS_REASONS` is shown as "will never start: ...".

A submission of more runs than one array may hold (`MaxArraySize`) is split into several arrays,
chained to honour `--max-parallel` (`limits.plan_arrays` says why); one that cannot fit under the
user's `MaxSubmitJobs` is refused by `check()`, before anything is created.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from launcher.backends.base import NEVER_STARTS, Backend, Request, backoff
from launcher.backends.follow import follow_files
from launcher.backends.slurm import limits, render, usage
from launcher.backends.slurm.commands import SUBMIT_TIMEOUT, SlurmRefused, SlurmSilent, parse_sbatch
from launcher.backends.slurm.commands import call as _call
from launcher.backends.slurm.commands import run as _run
from launcher.backends.slurm.failures import CAUSES, history_text, node_events
from launcher.backends.slurm.limits import Limits, plan_arrays
from launcher.backends.slurm.parse import (
    NEVER_STARTS_REASONS,
    SACCT_FIELDS,
    SINFO_FORMAT,
    Partition,
    SlurmInfo,
    parse_sacct,
    parse_sinfo,
)
from launcher.backends.slurm.queue import SharedQueue
from launcher.backends.spec import FollowOn, LaunchSpec
from launcher.config.cluster import ClusterProfile, SlurmSpec
from launcher.errors import UserError, choices_text, did_you_mean
from launcher.runs.cost import Used
from launcher.runs.state import RunState


@dataclass(frozen=True)
class SlurmPayload:
    """The keyword arguments of submitit's renderer (the script's #SBATCH lines)."""

    sbatch: dict[str, Any]


class SlurmBackend(Backend[SlurmPayload]):
    name = "slurm"

    def __init__(self, profile: ClusterProfile) -> None:
        super().__init__(profile)
        self._info: dict[str, SlurmInfo] = {}
        self._stories: dict[str, str] = {}
        self._asked: set[str] = set()

    @property
    def spec(self) -> SlurmSpec:
        assert self.profile.slurm is not None
        return self.profile.slurm

    # ------------------------------------------------------------------ rendering

    def translate(self, job: LaunchSpec) -> tuple[str, SlurmPayload]:
        script, options = render.job_script(self.spec, job)
        return script, SlurmPayload(options)

    def limits(self, dry_run: bool = False) -> Limits:
        """The cluster's MaxArraySize and MaxSubmitJobs, cached per profile (`limits.read`)."""
        return limits.read(self.profile.name, self.spec.qos, dry_run=dry_run)

    def array_script(self, requests: Sequence[Request[SlurmPayload]], max_parallel: int) -> str:
        """Every job array `submit_array` sends for N runs that ask for the same resources (see
        `render.array_script`): one, or, past MaxArraySize, each with a line saying which runs it
        holds and what it waits for."""
        jobs = [r.spec for r in requests]
        known = self.limits(dry_run=True)
        parts = plan_arrays(len(jobs), known.max_array_size, max_parallel)
        if len(parts) == 1:
            return render.array_script(self.spec, jobs, max_parallel)
        how = (
            "one at a time, each after the one before it ended" if parts[-1].after_previous else "all at once"
        )
        texts = [f"# {len(jobs)} runs in {len(parts)} arrays ({how}): MaxArraySize {known.max_array_size}, "
                 f"{known.source}"]  # fmt: skip
        for k, part in enumerate(parts):
            after = f"<array {k}>" if part.after_previous else None
            texts.append(
                f"# array {k + 1} of {len(parts)}: runs {part.start}-{part.stop - 1} ({part.size}), at most "
                f"{part.parallel} at once"
                + (f", after array {k} ended" if after else "")
                + "\n"
                + render.array_script(self.spec, jobs[part.start : part.stop], part.parallel, after)
            )
        return "\n".join(texts)

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
                    f"{render.slurm_time(part.max_seconds)} limit of partition '{part.name}'"
                )
            problem = _shape_shortfall(res, part)
            if problem:
                raise UserError(f"{recipe}: {problem}")
        self._check_submit_limit(len(requests))

    def _check_submit_limit(self, count: int) -> None:
        """Refuse `count` more jobs when they do not fit under the user's MaxSubmitJobs beside the
        jobs already queued (each array task counts: splitting cannot help)."""
        known = self.limits()
        if known.max_submit_jobs is None:
            return
        queued = limits.queued_jobs()
        room = known.max_submit_jobs - queued
        if count > room:
            raise UserError(
                f"{count} job(s) do not fit under cluster '{self.profile.name}''s limit of "
                f"{known.max_submit_jobs} queued jobs per user ({known.submit_limit_by}) with {queued} "
                f"of yours queued: each array task counts, so splitting cannot help; valid: at most "
                f"{max(room, 0)} now"
            )

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
        """`--array=0-(n-1)%P` jobs of at most MaxArraySize runs each (chained: `limits.plan_arrays`);
        every run's submit.sh becomes its array's script. Ids `<A>_<i>`. When Slurm refuses one, the
        arrays already sent are cancelled and their links removed; an interrupt (a signal) leaves
        them to be found (`find_submitted`)."""
        jobs = [r.spec for r in requests]
        parts = plan_arrays(len(jobs), self.limits().max_array_size, max_parallel)
        job_ids: list[str] = []
        sent: list[str] = []
        made: list[Path] = []
        try:
            for part in parts:
                chunk = jobs[part.start : part.stop]
                after = sent[-1] if part.after_previous else None
                text = render.array_script(self.spec, chunk, part.parallel, after)
                links = render.links_dir(chunk)
                links.mkdir(parents=True, exist_ok=True)
                made.append(links)
                for index, job in enumerate(chunk):
                    link = links / str(index)
                    if not link.is_symlink():
                        link.symlink_to(Path("..", "..", job.run_dir.name))
                    (job.run_dir / "submit.sh").write_text(text)
                sent.append(self._sbatch(chunk[0].run_dir / "submit.sh"))
                job_ids += [f"{sent[-1]}_{index}" for index in range(len(chunk))]
        except Exception:
            if sent:
                with suppress(UserError):
                    _call(["scancel", *reversed(sent)], "scancel", timeout=SUBMIT_TIMEOUT)
            for links in made:
                shutil.rmtree(links, ignore_errors=True)
            with suppress(OSError, IndexError):  # `.slurm-arrays` itself, when nothing else is in it
                made[0].parent.rmdir()
            raise
        return job_ids

    def find_submitted(self, runs: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """One squeue of this user's jobs: a run's own job by its name (the run id), a task of an
        array by the array's comment and the run's link in `.slurm-arrays/` (`<A>_<index>`). A job
        that already left the queue is not found (sacct is not asked)."""
        wanted = {run_id for run_id, _ in runs}
        tasks = {key: run_id for run_id, run_dir in runs for key in _array_links(run_dir)}
        out = _call(["squeue", "-h", "--me", "-o", "%i|%F|%j|%k"], "squeue")
        found: dict[str, str] = {}
        for line in out.splitlines():
            job_id, array_id, name, comment = [*line.split("|"), "", "", ""][:4]
            if not comment.startswith(render.ARRAY_COMMENT):
                if name in wanted:
                    found[name] = job_id
                continue
            first = comment.removeprefix(render.ARRAY_COMMENT)
            found.update({run: f"{array_id}_{i}" for (links, i), run in tasks.items() if links == first})
        return found

    def submit_after(self, request: FollowOn, *, after: str) -> str:
        """sbatch `<folder>/<stem>.sh`, held until job `after` completed (`render.follow_on_script`);
        the launcher's own Python runs it."""
        script = request.folder / f"{request.stem}.sh"
        script.write_text(render.follow_on_script(self.spec, request, after, sys.executable))
        return self._sbatch(script)

    # ------------------------------------------------------------------ watching

    def status(self, job_ids: Sequence[str]) -> dict[str, RunState]:
        """One squeue (and, for ids it no longer knows, one sacct) for all ids. A query that does
        not answer within the timeout sets `unanswered`; those ids are unknown."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        self.unanswered = None
        self._asked.update(ids)
        shared = SharedQueue(self.profile.name, self.spec.poll_interval_s)
        try:
            infos = shared.infos(ids, self._squeue, self._sacct, fresh=self.fresh)
        except SlurmSilent as err:
            self.unanswered = f"{err}; states as last seen"
            infos = {}
        self._info.update({j: infos[j] for j in ids if j in infos})
        return {j: infos[j].job_state if j in infos else RunState.UNKNOWN for j in ids}

    def accounting(self, job_ids: Sequence[str]) -> dict[str, SlurmInfo]:
        """What `sacct -D` (slurmdbd) says about these jobs: one query; UserError if it cannot answer."""
        found = parse_sacct(self._sacct(job_ids))
        return {j: found[j] for j in job_ids if j in found}

    def _sacct(self, job_ids: Sequence[str]) -> str:
        bases = ",".join(dict.fromkeys(j.split("_")[0] for j in job_ids))
        return _call(["sacct", "-n", "-P", "-X", "-D", "-o", SACCT_FIELDS, "-j", bases], "sacct")

    def _squeue(self) -> str:
        """Every job of the user, array tasks one by one (what `queue.SharedQueue` shares)."""
        cmd = ["squeue", "-h", "-r", "-t", "all", "--me",
               "-O", "JobArrayID:|,State:|,Reason:|,RestartCnt:|,NodeList:|,exit_code:|"]  # fmt: skip
        proc = _run(cmd, "squeue")
        return proc.stdout if proc.returncode == 0 else ""

    def _cached(self, job_id: str) -> SlurmInfo | None:
        """What the last status() that asked about `job_id` learnt; asks only about new ids."""
        if job_id not in self._asked:
            self.status([job_id])
        return self._info.get(job_id)

    def gpu_hours(self, runs: Sequence[tuple[Path, Sequence[str]]]) -> list[Used | None]:
        return usage.gpu_hours(runs)  # sacct: every start's elapsed x allocated GPUs (slurm/usage.py)

    def restarts(self, job_id: str) -> int | None:
        info = self._cached(job_id)
        return info.restarts if info else None

    def _story(self, job_id: str, info: SlurmInfo) -> str:
        """How the job's earlier starts ended (`after node failure (dev-n2 DOWN: ...)`); squeue knows
        only their count, so a restarted job's sacct history is asked for once."""
        if info.restarts and not info.earlier and job_id not in self._stories:
            with suppress(SlurmRefused, SlurmSilent):
                info.earlier = self.accounting([job_id]).get(job_id, info).earlier
        if job_id not in self._stories:
            self._stories[job_id] = history_text(info.earlier)
        return self._stories[job_id]

    def explain(self, job_id: str) -> str | None:
        info = self._cached(job_id)
        if info is None:
            return self.unanswered
        state = info.job_state
        story = self._story(job_id, info)
        again = f", restart {info.restarts}" + (f" {story}" if story else "") if info.restarts else ""
        reason = info.reason if info.reason and info.reason != "None" else ""
        if info.state in ("NODE_FAIL", "BOOT_FAIL"):
            end = info.end or datetime.now().isoformat(timespec="seconds")
            events = node_events(info.nodes, end) if info.nodes else None
            where = events or f"on {info.nodes or '?'}"
            return f"{CAUSES[info.state]}: {where}; Slurm ended the job {info.state}{again}"
        if state is RunState.PENDING:
            if info.restarts and reason in ("", "BeginTime"):
                return (
                    f"requeued, waiting to start again (restart {info.restarts}{f' {story}' * bool(story)})"
                )
            why = NEVER_STARTS_REASONS.get(reason.split(",")[0].strip())
            if why:
                return f"{NEVER_STARTS}{reason} ({why}); `launch cancel` it and ask for less"
            return f"Slurm: {info.state}" + (f" ({reason})" if reason else "")
        if state is RunState.RUNNING:
            return f"Slurm: {info.state} on {info.nodes or '?'}{again}"
        code = f", exit code {info.exit_code}" if info.exit_code else ""
        return f"Slurm: {info.state}{code}{again}"

    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        files = [run_dir / "logs" / f"{job_id}.out", run_dir / "logs" / f"{job_id}.err"]
        yield from follow_files(lambda: files, self._ended(job_id) if follow else (lambda: True))

    def _ended(self, job_id: str, every: float = 2.0) -> Callable[[], bool]:
        """A done() for follow_files that asks the scheduler at most every `every` seconds, less often
        the longer the job's state stays as it was (`follow.backoff`)."""
        last: dict[str, Any] = {"at": 0.0, "done": False, "state": None, "since": time.monotonic()}

        def done() -> bool:
            now = time.monotonic()
            if now - last["at"] >= backoff(now - last["since"], every):
                last["at"] = now
                state = self.status([job_id])[job_id]
                if state != last["state"]:
                    last["state"], last["since"] = state, now
                last["done"] = state.is_terminal
            return bool(last["done"])

        return done

    def cancel(self, job_id: str) -> None:
        """scancel, then wait (up to 30 s) until the scheduler reports the job ended; no longer
        once squeue stops answering (`unanswered` says so: the cancel was sent all the same)."""
        self.cancel_many([job_id])

    def cancel_many(self, job_ids: Sequence[str]) -> None:
        """One scancel for all (array tasks as `<A>_[i-j,...]`, the latest arrays first, so that no
        chained array starts when the one before it ends), then wait as `cancel` does."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return
        _call(["scancel", *scancel_ids(ids)], "scancel", timeout=SUBMIT_TIMEOUT)
        fresh, self.fresh = self.fresh, True
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                states = self.status(ids)
                if self.unanswered or all(s.is_terminal for s in states.values()):
                    return
                time.sleep(0.5)
        finally:
            self.fresh = fresh


def scancel_ids(job_ids: Sequence[str]) -> list[str]:
    """Job ids for scancel: each array's tasks as one `<A>_[0-3,7]`, the highest (latest) ids first."""
    tasks: dict[str, list[int]] = {}
    out: list[str] = []
    for job_id in job_ids:
        base, sep, index = job_id.partition("_")
        if sep and index.isdigit():
            tasks.setdefault(base, []).append(int(index))
        else:
            out.append(job_id)
    for base, indices in tasks.items():
        ranges: list[list[int]] = []
        for i in sorted(set(indices)):
            if ranges and i == ranges[-1][1] + 1:
                ranges[-1][1] = i
            else:
                ranges.append([i, i])
        out.append(f"{base}_[" + ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) + "]")
    return sorted(out, key=lambda text: int(re.sub(r"\D.*", "", text) or 0), reverse=True)


def _array_links(run_dir: Path) -> list[tuple[str, int]]:
    """(links directory, task index) of each `.slurm-arrays/<first run id>/<index>` link to `run_dir`."""
    found = []
    for link in run_dir.parent.glob(".slurm-arrays/*/*"):
        with suppress(OSError, ValueError):
            if link.is_symlink() and Path(os.readlink(link)).name == run_dir.name:
                found.append((link.parent.name, int(link.name)))
    return found


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
            f"have at most {most}; valid: cpus_per_gpu x ranks per node <= {most}"
        )
    if cpu_ok and not mem_ok:
        most_gb = max(s.mem_mb for s in cpu_ok) / 1024
        return (
            f"resources.mem_gb: {res.mem_gb:g} is more than the {most_gb:g} GB of memory of any node of "
            f"{where} with {res.cpus_per_task} CPUs; valid: at most {most_gb:g}"
        )
    fitting = sum(s.count for s in mem_ok)
    if gpu_ok and fitting < res.nodes:
        return (
            f"resources.nodes: {res.nodes} but only {fitting} nodes of {where} hold the task's GPUs, "
            f"CPUs and memory; valid: 1-{max(fitting, 1)}"
        )
    return None
