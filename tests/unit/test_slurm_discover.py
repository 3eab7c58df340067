"""What `launch init` reads from a Slurm cluster: scontrol's answers parsed, a partition's shape, and
the profile written from it (launcher/backends/slurm/discover.py, launcher/config/project.py).

The fixtures under tests/fixtures/slurm/ are the dev cluster's real answers (Slurm 22.05.8, captured
with `scontrol show node -o`, `scontrol show partition -o`, `scontrol show config` and `sinfo -h -o
'%P|%a|%l|%D|%c|%m|%G'`); the values below are read off them by hand. A few synthetic lines cover
what that cluster does not have (typed and untyped GRES side by side, sockets, limits).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launcher.backends.slurm.discover import (
    Node,
    PartitionInfo,
    Site,
    key_values,
    parse_cluster_name,
    parse_gres,
    parse_nodes,
    parse_partitions,
    read_site,
    shape,
)
from launcher.config.cluster import ClusterProfile
from launcher.config.project import gpu_facts, slurm_profile
from launcher.config.schema import validate
from launcher.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def _dev_site() -> Site:
    return read_site(
        _fixture("scontrol_show_partition.txt"), _fixture("scontrol_show_node.txt"),
        _fixture("scontrol_show_config.txt"),
    )  # fmt: skip


def test_a_node_record_keeps_values_with_spaces_whole() -> None:
    kv = key_values(_fixture("scontrol_show_node.txt"))
    assert kv["NodeName"] == "vm"
    assert kv["OS"] == "Linux 6.18.44-fc-v1300 #1 SMP PREEMPT_DYNAMIC @0"
    assert kv["RealMemory"] == "20480"
    assert kv["CfgTRES"] == "cpu=32,mem=20G,billing=32,gres/gpu=8,gres/gpu:a800=8"
    assert kv["Partitions"] == "gpu,2080ti"


def test_the_dev_clusters_node() -> None:
    assert parse_nodes(_fixture("scontrol_show_node.txt")) == [
        Node("vm", cpus=32, mem_mb=20480, gpus={"a800": 8}, partitions=("gpu", "2080ti"))
    ]


def test_the_dev_clusters_partitions_default_first() -> None:
    assert parse_partitions(_fixture("scontrol_show_partition.txt")) == [
        PartitionInfo("gpu", default=True, up=True, max_time=None, max_nodes=None),
        PartitionInfo("2080ti", default=False, up=True, max_time=None, max_nodes=None),
    ]
    swapped = "\n".join(reversed(_fixture("scontrol_show_partition.txt").splitlines()))
    assert [p.name for p in parse_partitions(swapped)] == ["gpu", "2080ti"]


def test_the_cluster_name_and_sinfo_agree_with_scontrol() -> None:
    assert parse_cluster_name(_fixture("scontrol_show_config.txt")) == "dev"
    rows = [line.split("|") for line in _fixture("sinfo.txt").splitlines()]
    assert rows[0][0] == "gpu*"  # sinfo marks the default partition scontrol calls Default=YES
    assert {(r[4], r[5], r[6]) for r in rows} == {("32", "20480", "gpu:a800:8")}


def test_the_dev_site() -> None:
    site = _dev_site()
    assert site.name == "dev"
    first = site.shapes[0]
    assert (first.partition.name, first.nodes, first.gpu_type, first.gpus_per_node) == ("gpu", 1, "a800", 8)
    assert (first.cpus, first.mem_mb, first.mixed, first.max_nodes) == (32, 20480, False, 1)


@pytest.mark.parametrize(
    "gres,gpus",
    [
        ("gpu:a800:8", {"a800": 8}),
        ("gpu:4(S:0-1)", {None: 4}),
        ("gpu:a100:4(S:0-1),gpu:v100:2(S:1)", {"a100": 4, "v100": 2}),
        ("gpu:nvidia_a100-sxm4-80gb:4,shard:nvidia_a100-sxm4-80gb:16", {"nvidia_a100-sxm4-80gb": 4}),
        ("gpu:h100:8(IDX:0-7)", {"h100": 8}),
        ("mps:100", {}),
        ("(null)", {}),
        ("", {}),
    ],
)
def test_gpus_of_a_gres(gres: str, gpus: dict[str | None, int]) -> None:
    assert parse_gres(gres) == gpus


def test_a_mixed_partition_takes_its_common_type_and_smallest_node() -> None:
    part = PartitionInfo("batch", default=True, up=True, max_time="2-00:00:00", max_nodes=2)
    nodes = [
        Node("g1", 64, 512_000, {"a100": 8}, ("batch",)),
        Node("g2", 48, 256_000, {"a100": 4}, ("batch",)),
        Node("g3", 64, 512_000, {"a100": 8}, ("batch",)),
        Node("v1", 32, 128_000, {"v100": 2}, ("batch",)),
        Node("c1", 128, 1_000_000, {}, ("batch", "cpu")),
        Node("x1", 8, 8_000, {"a100": 1}, ("other",)),
    ]
    found = shape(part, nodes)
    assert found is not None
    assert (found.gpu_type, found.nodes, found.gpus_per_node, found.cpus, found.mem_mb) == (
        "a100",
        3,
        4,
        48,
        256_000,
    )
    assert found.mixed and found.max_nodes == 2
    assert shape(PartitionInfo("empty", False, True, None, None), nodes) is None


def test_a_cpu_partition_has_no_gpus() -> None:
    found = shape(PartitionInfo("cpu", False, True, None, None), [Node("c1", 128, 1_000_000, {}, ("cpu",))])
    assert found is not None and (found.gpu_type, found.gpus_per_node, found.cpus) == (None, 0, 128)


@pytest.mark.parametrize(
    "name,facts",
    [
        ("a800", ("a800", 80, True)),
        ("NVIDIA A100-SXM4-80GB", ("a100", 80, True)),
        ("a100", ("a100", 40, True)),
        ("nvidia_a100-sxm4-80gb", ("a100", 80, True)),
        ("Tesla V100-SXM2-32GB", ("v100", 32, False)),
        ("NVIDIA GeForce RTX 2080 Ti", ("2080ti", 11, False)),
        ("NVIDIA RTX A6000", ("a6000", 48, True)),
        ("NVIDIA RTX 6000 Ada Generation", ("rtx6000ada", 48, True)),
        ("NVIDIA H100 80GB HBM3", ("h100", 80, True)),
        ("h200", ("h200", 141, True)),
        ("a10g", ("a10", 24, True)),
        ("tesla", (None, None, None)),
    ],
)
def test_gpu_facts(name: str, facts: tuple[str | None, float | None, bool | None]) -> None:
    assert gpu_facts(name) == facts


def test_the_profile_of_the_dev_cluster_validates() -> None:
    profile = slurm_profile(_dev_site(), None, None, "/opt/venv/bin/python")
    assert profile.name == "dev" and not profile.todos
    data = yaml.safe_load(profile.text)
    loaded = validate(ClusterProfile, data, "dev.yaml")
    assert loaded.backend == "slurm" and loaded.slurm is not None
    assert (loaded.slurm.partition, loaded.slurm.gres_type, loaded.slurm.python) == (
        "gpu",
        "a800",
        "/opt/venv/bin/python",
    )
    assert loaded.gpu == loaded.gpus and loaded.gpus is not None
    assert (loaded.gpus.type, loaded.gpus.per_node, loaded.gpus.memory_gb, loaded.gpus.bf16) == (
        "a800",
        8,
        80,
        True,
    )
    assert loaded.node is not None and (loaded.node.cpus, loaded.node.mem_gb) == (32, 20)
    assert (loaded.limits.max_nodes, loaded.limits.max_time) == (1, None)
    assert "Other partitions: 2080ti" in profile.text


def test_a_named_partition_and_an_unknown_one() -> None:
    profile = slurm_profile(_dev_site(), None, "2080ti", "python")
    assert profile.name == "dev-2080ti" and "partition: 2080ti" in profile.text
    with pytest.raises(UserError, match="valid: gpu, 2080ti"):
        slurm_profile(_dev_site(), None, "nope", "python")


def test_an_unknown_gpu_type_is_a_todo_the_schema_refuses() -> None:
    nodes = "NodeName=n1 CPUTot=16 RealMemory=64000 Gres=gpu:tesla:2 Partitions=main State=IDLE"
    partitions = "PartitionName=main Default=YES MaxTime=1-00:00:00 MaxNodes=4 State=UP"
    profile = slurm_profile(read_site(partitions, nodes, ""), None, None, "python")
    assert profile.name == "slurm"
    assert [t.split(":")[0] for t in profile.todos] == ["gpu.memory_gb", "gpu.bf16"]
    assert "  memory_gb: null  # TODO:" in profile.text
    assert "max_time: 1-00:00:00" in profile.text
    with pytest.raises(UserError, match="memory_gb"):
        validate(ClusterProfile, yaml.safe_load(profile.text), "slurm.yaml")
    filled = profile.text.replace("memory_gb: null", "memory_gb: 32")
    loaded = validate(ClusterProfile, yaml.safe_load(filled), "slurm.yaml")
    assert loaded.limits.max_nodes == 1 and loaded.limits.max_time == "1-00:00:00"  # 1 node of 4 allowed
