"""A user's project and `launch init`, which writes one: `launch.toml` (the marker `launcher.paths`
looks for), a recipe to start from and a cluster profile of the machine it runs on, read from the
Slurm cluster on a login node (`launcher.backends.slurm.discover`), else from nvidia-smi, else the CPUs.

Each written profile is checked against the profile schema before anything is written; what cannot
be known (the memory of a GPU type not in KNOWN_GPUS) is a `# TODO` line that the schema refuses
until it is filled in, and `launch init` says so.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from launcher import paths
from launcher.config.cluster import ClusterProfile, GpuSpec, detect_local_gpus
from launcher.config.schema import validate
from launcher.errors import UserError, choices_text

if TYPE_CHECKING:
    from launcher.backends.slurm.discover import Shape, Site

EXAMPLE = "example"
BACKENDS = ("slurm", "local")

KNOWN_GPUS: dict[str, tuple[float, bool]] = {
    "gh200": (96, True), "h200": (141, True), "h100nvl": (94, True), "h100": (80, True),
    "h800": (80, True), "h20": (96, True), "b200": (180, True), "a100": (40, True), "a800": (80, True),
    "a6000": (48, True), "a5000": (24, True), "a4000": (16, True), "a40": (48, True), "a30": (24, True),
    "a10": (24, True), "l40s": (48, True), "l40": (48, True), "l4": (24, True), "rtx6000ada": (48, True),
    "4090": (24, True), "3090": (24, True), "3080": (10, True), "2080ti": (11, False),
    "titanrtx": (24, False), "rtx8000": (48, False), "rtx6000": (24, False), "v100": (16, False),
    "t4": (16, False), "p100": (16, False), "p40": (24, False), "k80": (12, False),
    "mi300x": (192, True), "mi250": (64, True), "mi210": (64, True),
}  # fmt: skip
"""GPU memory (GB) and bf16 support by a name fragment (NVIDIA and AMD Instinct): the longest
fragment in a GRES type or an nvidia-smi name wins. A100 and V100 come in two sizes: the smaller
unless the name says `80gb`/`32g`."""

_SIZE = re.compile(r"(?:^|[^a-z0-9])(\d{2,3})g(?:b)?(?![a-z0-9])")


def gpu_facts(name: str) -> tuple[str | None, float | None, bool | None]:
    """(the fragment of KNOWN_GPUS, memory in GB, bf16) for a GPU's name; Nones when unknown."""
    raw = name.lower()
    flat = re.sub(r"[^a-z0-9]", "", raw.replace("nvidia", ""))
    for key in sorted(KNOWN_GPUS, key=len, reverse=True):
        if key in flat:
            memory, bf16 = KNOWN_GPUS[key]
            sized = _SIZE.search(raw)
            return key, float(sized.group(1)) if sized else memory, bf16
    return None, None, None


def _scalar(value: object) -> str:
    """A YAML scalar as it goes into a flow mapping (quoted where YAML would misread it)."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _gb(mb: float) -> str:
    """Memory in GB, rounded down to 0.1 (a profile never promises more than there is)."""
    return f"{math.floor(mb / 1024 * 10) / 10:g}"


@dataclass
class Profile:
    """A cluster profile's text, where its facts came from, and the TODO lines a person must fill."""

    name: str
    text: str
    source: str
    todos: list[str] = field(default_factory=list)
    next_command: str = ""


def _gpu_lines(gpu_type: str | None, per_node: int) -> tuple[list[str], list[str]]:
    """The `gpu:` section for `per_node` GPUs of `gpu_type`, and the TODOs it holds."""
    _, memory, bf16 = gpu_facts(gpu_type or "")
    if memory is not None and bf16 is not None:
        spec = (
            f"type: {_scalar(gpu_type)}, memory_gb: {memory:g}, per_node: {per_node}, bf16: {_scalar(bf16)}"
        )
        return [f"gpu: {{{spec}}}"], []
    what = f"'{gpu_type}'" if gpu_type else "these GPUs (the GRES has no type)"
    memory_todo = f"the memory of one of {what} in GB (launch init does not know it)"
    lines = [
        "gpu:",
        f"  type: {_scalar(gpu_type)}",
        f"  memory_gb: null  # TODO: {memory_todo}",
        f"  per_node: {per_node}",
        "  bf16: false  # TODO: true when they support bf16 (NVIDIA: compute capability 8.0 or newer)",
    ]
    return lines, [f"gpu.memory_gb: {memory_todo}", "gpu.bf16: false until you say they support bf16"]


def _shape_words(shape: Shape) -> str:
    gpus = f"{shape.gpus_per_node}x {shape.gpu_type or 'GPU'}" if shape.gpus_per_node else "no GPU"
    nodes = f"{shape.nodes} node{'s' if shape.nodes != 1 else ''}"
    return f"{nodes} of {gpus}, {shape.cpus} CPUs, {_gb(shape.mem_mb)} GB"


def slurm_profile(site: Site, name: str | None, partition: str | None, python: str) -> Profile:
    """The profile of one partition of `site` (the default one unless `partition` names another)."""
    if not site.shapes:
        raise UserError("scontrol shows no partition with nodes: nothing to describe; try --backend local")
    by_name = {s.partition.name: s for s in site.shapes}
    if partition is not None and partition not in by_name:
        raise UserError(
            f"--partition: '{partition}' is not a partition with nodes; valid: {choices_text(by_name)}"
        )
    shape = by_name[partition] if partition else site.shapes[0]
    part = shape.partition
    cluster = site.name or "slurm"
    name = name or _safe_name(cluster if part.default else f"{cluster}-{part.name}")
    default = " (the default)" if part.default else ""
    lines = [
        f"# Slurm partition {part.name}{default} of cluster {cluster}, {_shape_words(shape)} each.",
        f"# Written by `launch init` from scontrol on {socket.gethostname()}, {date.today()}.",
    ]
    if not part.up:
        lines.append("# The partition is not UP now: jobs wait until it is.")
    if shape.mixed:
        lines.append("# Its nodes differ: the numbers below are those of its smallest node with these GPUs.")
    others = [f"{s.partition.name} ({_shape_words(s)})" for s in site.shapes if s is not shape]
    if others:
        lines.append(f"# Other partitions: {'; '.join(others)}.")
        lines.append("# A profile for one of them: launch init --partition NAME (in this project)")
    lines.append(f"# launch recipe {EXAMPLE} --cluster {name} --dry-run")
    lines += [f"name: {_scalar(name)}", "backend: slurm"]
    todos: list[str] = []
    if shape.gpus_per_node:
        gpu, todos = _gpu_lines(shape.gpu_type, shape.gpus_per_node)
        lines += gpu
    else:
        lines.append("gpu: null  # the partition's nodes have no GPU GRES")
    lines.append(f"node: {{cpus: {shape.cpus}, mem_gb: {_gb(shape.mem_mb)}}}")
    time_note = "its MaxTime" if part.max_time else "the partition has no MaxTime"
    max_time = _scalar(part.max_time)
    lines.append(f"limits: {{max_nodes: {shape.max_nodes}, max_time: {max_time}}}  # {time_note}")
    lines += [
        "slurm:",
        f"  partition: {_scalar(part.name)}",
        "  account: null  # null: your default account; or the account jobs are charged to",
        "  qos: null",
        f"  gres_type: {_scalar(shape.gpu_type)}",
        "  # the interpreter jobs run with: the one launch init ran with (it has recipe-launcher)",
        f"  python: {_scalar(python)}",
        '  # shell lines each job runs first, e.g. ["module load cuda/12.4", "source ~/venv/bin/activate"]',
        "  setup: []",
    ]
    return Profile(name, "\n".join(lines) + "\n", f"scontrol (partition {part.name})", todos,
                   f"launch recipe {EXAMPLE} --cluster {name} --dry-run")  # fmt: skip


def _memory_mb() -> float:
    """This machine's memory in MB (MemTotal of /proc/meminfo, else sysconf)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**2


def this_machine() -> tuple[GpuSpec | None, int, float]:
    """This machine's GPUs (nvidia-smi; None: none), the CPUs this process may use, memory in MB."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return detect_local_gpus(), cpus, _memory_mb()


def local_profile(name: str | None, gpu: GpuSpec | None, cpus: int, mem_mb: float) -> Profile:
    """A local profile of a machine with these GPUs (None: CPU only), CPUs and memory."""
    name = name or "local"
    mem = _gb(mem_mb)
    todos: list[str] = []
    if gpu is None:
        what, source, gpu_lines = (
            "no GPU",
            "the CPUs",
            ["gpu: null  # nvidia-smi found no GPU: jobs run on CPU"],
        )
    else:
        key = gpu_facts(gpu.type or "")[0]
        gpu_type = key or re.sub(r"[^a-z0-9]+", "-", (gpu.type or "gpu").lower()).strip("-")
        what, source = f"{gpu.per_node}x {gpu.type} ({gpu.memory_gb:g} GB)", "nvidia-smi"
        spec = f"{{type: {_scalar(gpu_type)}, memory_gb: {gpu.memory_gb:g}, per_node: {gpu.per_node}"
        gpu_lines = [f"gpu: {spec}, bf16: {_scalar(gpu.bf16)}}}  # or auto: detected at each submit"]
    lines = [
        f"# This machine ({socket.gethostname()}) with {what}, {cpus} CPUs and {mem} GB, jobs as processes.",
        f"# Written by `launch init` from {source}, {date.today()}.",
        f"# launch recipe {EXAMPLE} --cluster {name} --follow",
        f"name: {_scalar(name)}",
        "backend: local",
        *gpu_lines,
        f"node: {{cpus: {cpus}, mem_gb: {mem}}}",
        "limits: {max_nodes: 1}",
        "local: {gpu_ids: null}  # the GPUs jobs may use (nvidia-smi indices); null: all",
    ]
    return Profile(
        name, "\n".join(lines) + "\n", source, todos, f"launch recipe {EXAMPLE} --cluster {name} --follow"
    )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "cluster"


def check_name(name: str) -> str:
    """A profile name is a file name of letters, digits, `_`, `.` and `-` (not a path, no .yaml)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or paths.looks_like_path(name):
        raise UserError(
            f"--name: '{name}' is not a profile name; valid: letters, digits, _ . - (e.g. mycluster)"
        )
    return name


LAUNCH_TOML = """\
# A recipe-launcher project: `launch` run in this directory or below finds the recipes in
# recipes/ and the cluster profiles in cluster/ first (then $LAUNCH_HOME's, then the built-ins:
# `launch recipes`, `launch clusters`). A recipe here may take a built-in's name: it wins.
[project]
name = {name}
# where run directories go, relative to this file ($LAUNCH_RUNS wins; without this key: ./runs)
runs = "runs"
"""

EXAMPLE_RECIPE = """\
# A first recipe: a CPU-sized stand-in for a training job (no model). It counts steps, writes a
# checkpoint every save_steps and resumes from the latest one: a check that the cluster runs jobs.
# Start your own from it or from a built-in (`launch recipes`, then `launch show NAME > recipes/mine.yaml`).
# launch recipe {example} --cluster {cluster} --follow
name: {example}
# the job kind: smoke (this stand-in), train, evaluate, classify, spacy, ... (`launch recipes` lists them)
job: smoke
task: ner
model: {{name_or_path: none}}
# what one run asks for; checked against the profile (`launch show {example} --cluster {cluster}`)
resources: {{nodes: 1, gpus_per_node: 0, cpus_per_gpu: 1, time: "00:10:00"}}
train: {{max_steps: 20, save_steps: 5, seed: 42}}
tracking: {{wandb: {{mode: disabled}}}}
"""


@dataclass
class Initialized:
    """What `launch init` wrote and kept, what is left to a person (the profile's TODOs), and the
    command to run next (in `profile`)."""

    directory: Path
    written: list[Path]
    kept: list[Path]
    profile: Profile


def _check(profile: Profile, where: Path) -> None:
    """The profile as the schema reads it (a TODO line is refused there until it is filled)."""
    if not profile.todos:
        validate(ClusterProfile, yaml.safe_load(profile.text), str(where))


def init_project(
    directory: Path, name: str | None = None, backend: str | None = None, partition: str | None = None,
    force: bool = False,
) -> Initialized:  # fmt: skip
    """Write launch.toml, recipes/example.yaml and cluster/<name>.yaml into `directory` (made when
    missing). In a directory that is a project already (it has a launch.toml) only the profile is
    written. A file that exists is a UserError naming it (nothing written) unless `force`."""
    from launcher.backends.slurm import discover

    if backend is not None and backend not in BACKENDS:
        raise UserError(
            f"--backend: '{backend}' is not one launch init writes; valid: {choices_text(BACKENDS)}"
        )
    if name is not None:
        check_name(name)
    if partition is not None and backend == "local":
        raise UserError("--partition: a Slurm partition, but --backend is local; drop one of them")
    directory = directory.expanduser().absolute()
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: is a file, not a directory; give the project's directory")
    if backend == "slurm" or (backend is None and (partition is not None or discover.answers())):
        profile = slurm_profile(discover.discover(), name, partition, sys.executable)
    else:
        profile = local_profile(name, *this_machine())
    files = {
        directory / paths.MARKER: LAUNCH_TOML.format(name=json.dumps(directory.name or "project")),
        directory / "recipes" / f"{EXAMPLE}.yaml": EXAMPLE_RECIPE.format(
            example=EXAMPLE, cluster=profile.name
        ),
        directory / "cluster" / f"{profile.name}.yaml": profile.text,
    }
    _check(profile, directory / "cluster" / f"{profile.name}.yaml")
    kept = [] if force or not (directory / paths.MARKER).is_file() else list(files)[:2]
    for path in files:
        if path not in kept and (path.exists() or path.is_symlink()) and not force:
            raise UserError(f"{path}: exists; launch init overwrites nothing without --force")
    written = [path for path in files if path not in kept]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
    return Initialized(directory, written, kept, profile)
