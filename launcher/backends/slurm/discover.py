"""The Slurm cluster this machine is a login node of, as `launch init` describes it: partitions
(the default first), and per partition the nodes' GPUs (GRES type and count), CPUs and memory, the
time limit and the node limit. Read from `scontrol show partition -o`, `scontrol show node -o` and
`scontrol show config`; `sinfo` only tells whether Slurm answers at all.

The parsers are pure (text in, data out); `discover` runs the commands.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from launcher.backends.slurm.commands import call, run
from launcher.errors import UserError

PROBE_TIMEOUT = 5.0
"""Seconds sinfo may take before this machine counts as no Slurm login node."""

_KEY = re.compile(r"(?:^|\s)([A-Z][A-Za-z0-9_/:.]*)=")


def key_values(line: str) -> dict[str, str]:
    """One `scontrol show ... -o` record: `Key=value` pairs. A value runs to the next ` Key=`, so
    values with spaces (`OS=Linux 6.1 #1 SMP`, `Reason=not responding`) stay whole."""
    found = list(_KEY.finditer(line))
    out: dict[str, str] = {}
    for here, after in zip(found, [*found[1:], None], strict=True):
        end = after.start() if after is not None else len(line)
        out[here.group(1)] = line[here.end() : end].strip()
    return out


def parse_gres(text: str) -> dict[str | None, int]:
    """GPUs by type in a node's `Gres=`: `gpu:a800:8` -> {a800: 8}; `gpu:4(S:0-1)` -> {None: 4};
    other GRES (`shard:...`, `mps:...`) and `(null)` -> nothing."""
    gpus: dict[str | None, int] = {}
    for item in re.split(r",(?![^(]*\))", text):
        parts = re.sub(r"\(.*\)$", "", item.strip()).split(":")
        if parts[0] != "gpu" or len(parts) < 2 or not parts[-1].isdigit():
            continue
        gpu_type = parts[1] if len(parts) >= 3 else None
        gpus[gpu_type] = gpus.get(gpu_type, 0) + int(parts[-1])
    return gpus


@dataclass(frozen=True)
class Node:
    """One node of `scontrol show node -o`."""

    name: str
    cpus: int
    mem_mb: int
    gpus: dict[str | None, int]
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of `scontrol show partition -o`: `max_time` as Slurm writes it (None:
    UNLIMITED), `max_nodes` (None: UNLIMITED)."""

    name: str
    default: bool
    up: bool
    max_time: str | None
    max_nodes: int | None


def _count(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_nodes(text: str) -> list[Node]:
    """`scontrol show node -o`: CPUs (`CPUEfctv`, the ones jobs may use, else `CPUTot`),
    `RealMemory` (MB), the GPUs of `Gres`, `Partitions`."""
    nodes = []
    for line in text.splitlines():
        kv = key_values(line)
        if "NodeName" not in kv:
            continue
        cpus = _count(kv.get("CPUEfctv", "")) or _count(kv.get("CPUTot", "")) or 0
        parts = tuple(p for p in kv.get("Partitions", "").split(",") if p and p != "(null)")
        nodes.append(
            Node(
                kv["NodeName"],
                cpus,
                _count(kv.get("RealMemory", "")) or 0,
                parse_gres(kv.get("Gres", "")),
                parts,
            )
        )
    return nodes


def parse_partitions(text: str) -> list[PartitionInfo]:
    """`scontrol show partition -o`, the default partition first (then Slurm's order)."""
    found = []
    for line in text.splitlines():
        kv = key_values(line)
        if "PartitionName" not in kv:
            continue
        max_time = kv.get("MaxTime", "UNLIMITED")
        found.append(
            PartitionInfo(
                name=kv["PartitionName"],
                default=kv.get("Default") == "YES",
                up=kv.get("State", "UP") == "UP",
                max_time=None if max_time.upper() in ("UNLIMITED", "INFINITE", "NONE") else max_time,
                max_nodes=_count(kv.get("MaxNodes", "")),
            )
        )
    return sorted(found, key=lambda p: not p.default)


def parse_cluster_name(config_text: str) -> str | None:
    """`ClusterName` of `scontrol show config`."""
    found = re.search(r"^ClusterName\s*=\s*(\S+)", config_text, re.MULTILINE)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Shape:
    """What one partition offers a job, for a cluster profile: the GPU type most of its GPU nodes
    have (None: untyped GRES) and the fewest GPUs, CPUs and MB of memory of those nodes (a job that
    fits them fits every one), how many such nodes there are, and whether the nodes differ."""

    partition: PartitionInfo
    nodes: int
    gpu_type: str | None
    gpus_per_node: int
    cpus: int
    mem_mb: int
    mixed: bool

    @property
    def max_nodes(self) -> int:
        limit = self.partition.max_nodes
        return max(1, min(self.nodes, limit) if limit else self.nodes)


def shape(partition: PartitionInfo, nodes: list[Node]) -> Shape | None:
    """The shape of `partition` from its nodes; None when it has none."""
    members = [n for n in nodes if partition.name in n.partitions]
    if not members:
        return None
    types = Counter(t for n in members for t in n.gpus)
    gpu_type = types.most_common(1)[0][0] if types else None
    with_gpus = [n for n in members if n.gpus.get(gpu_type, 0) > 0] if types else members
    sizes = {(n.gpus.get(gpu_type, 0), n.cpus, n.mem_mb) for n in members}
    return Shape(
        partition=partition,
        nodes=len(with_gpus),
        gpu_type=gpu_type,
        gpus_per_node=min(n.gpus.get(gpu_type, 0) for n in with_gpus),
        cpus=min(n.cpus for n in with_gpus),
        mem_mb=min(n.mem_mb for n in with_gpus),
        mixed=len(sizes) > 1 or len(types) > 1,
    )


@dataclass(frozen=True)
class Site:
    """A Slurm cluster as discovered: its name and every partition's shape, the default first."""

    name: str | None
    shapes: list[Shape]


def read_site(partitions_text: str, nodes_text: str, config_text: str) -> Site:
    """The three scontrol answers put together (pure)."""
    nodes = parse_nodes(nodes_text)
    shapes = [s for p in parse_partitions(partitions_text) if (s := shape(p, nodes)) is not None]
    return Site(parse_cluster_name(config_text), shapes)


def answers() -> bool:
    """Whether this is a Slurm login node: sinfo runs and answers within PROBE_TIMEOUT seconds."""
    try:
        proc = run(["sinfo", "-h", "-o", "%P"], "sinfo", timeout=PROBE_TIMEOUT)
    except UserError:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def discover() -> Site:
    """Ask this machine's Slurm; a command that is missing, silent or refusing is a one-line error."""
    partitions = call(["scontrol", "show", "partition", "-o"], "scontrol show partition")
    nodes = call(["scontrol", "show", "node", "-o"], "scontrol show node")
    config = call(["scontrol", "show", "config"], "scontrol show config")
    return read_site(partitions, nodes, config)
