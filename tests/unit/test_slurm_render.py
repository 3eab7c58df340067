"""Rendered sbatch scripts against golden files, and a dry run that calls no scheduler command.

The goldens render with a fixed run id, runs root `/runs`, working directory `/project` and code
snapshot `/runs/.snapshots/0123456789abcdef` (tests.support.code), so they hold no machine paths.
`UPDATE_GOLDEN=1 pytest tests/unit/test_slurm_render.py` rewrites them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from launcher.backends.base import Request
from launcher.backends.slurm.backend import SlurmBackend
from launcher.config.cluster import ClusterProfile, load_cluster
from launcher.config.recipe import load_recipe
from launcher.runs.run import Run
from tests.support.code import fixed_code
from tests.support.paths import GOLDEN


def request_for(
    recipe: str,
    cluster: str = "a800",
    overrides: list[str] | None = None,
    n: int = 0,
    profile: ClusterProfile | None = None,
) -> Request:
    loaded = load_recipe(recipe, overrides or [])
    profile = profile or load_cluster(cluster)
    run_id = f"{loaded.name}-20260101-0000-{n:04d}"
    run = Run(run_id, Path("/runs") / run_id, loaded, profile, code=fixed_code())
    return SlurmBackend(profile).dryrun(run)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; create it with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file; UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize(
    ("golden", "recipe", "overrides"),
    [
        ("ds7b_fft-a800.sbatch", "ds7b_fft", []),
        ("ds7b_fft-a800-2nodes.sbatch", "ds7b_fft", ["resources.nodes=2"]),
        ("ds1.5b_fft-a800.sbatch", "ds1.5b_fft", []),
        ("llama4_scout_qlora-a800.sbatch", "llama4_scout_qlora", []),
    ],
)
def test_golden_scripts(golden: str, recipe: str, overrides: list[str]) -> None:
    check_golden(golden, request_for(recipe, overrides=overrides).materialize())


def test_golden_array() -> None:
    requests = [request_for("ds7b_eval_int8", n=i) for i in range(3)]
    text = SlurmBackend(requests[0].run.profile).array_script(requests, 2)
    check_golden("ds7b_eval_int8-a800-array.sbatch", text)


def _options(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_two_nodes_start_one_torchrun_per_node_with_rendezvous_on_the_head_node() -> None:
    text = request_for("ds7b_fft", overrides=["resources.nodes=2"]).materialize()
    options = _options(text)
    for expected in ("--nodes=2", "--ntasks-per-node=1", "--gres=gpu:a800:8", "--cpus-per-task=96",
                     "--time=72:00:00", "--signal=B:USR2@90", "--requeue", "--open-mode=append",
                     "--partition=gpu", "--job-name=ds7b_fft-20260101-0000-0000"):  # fmt: skip
        assert expected in options, expected
    assert "--output=/runs/ds7b_fft-20260101-0000-0000/logs/%j.out" in options
    assert "--error=/runs/ds7b_fft-20260101-0000-0000/logs/%j.err" in options
    assert "scontrol show hostnames" not in text  # the head is srun's own address: no scontrol, no DNS
    assert 'head="$SLURM_LAUNCH_NODE_IPADDR"' in text
    assert "export RDZV_PORT=$((29500 + SLURM_JOB_ID % 2000))\nexport RDZV_TIMEOUT=300\n" in text
    assert "srun --ntasks-per-node=1 --cpus-per-task=96 --kill-on-bad-exit=1 bash -c" in text
    assert '--nnodes "$SLURM_NNODES" --nproc-per-node 8' in text
    assert '--rdzv-backend c10d --rdzv-endpoint "$head:$RDZV_PORT"' in text
    assert (
        '--rdzv-conf "is_host=$((SLURM_NODEID == 0)),join_timeout=$RDZV_TIMEOUT,read_timeout=$RDZV_TIMEOUT"'
        in text
    )
    assert "source ~/venvs/llm/bin/activate" in text
    assert text.index("source ~/venvs") < text.index("srun ")


def test_fixed_rendezvous_port_timeout_and_no_requeue_come_from_the_profile() -> None:
    data = load_cluster("a800").model_dump()
    data["slurm"].update(requeue=False, rendezvous_port=29411, rendezvous_timeout_s=45)
    profile = ClusterProfile.model_validate(data)
    text = request_for("ds7b_fft", profile=profile, overrides=["resources.nodes=2"]).materialize()
    options = _options(text)
    assert "--no-requeue" in options and "--requeue" not in options
    assert (
        "# port 29411; nodes wait 45 s for each other\nexport RDZV_PORT=29411\nexport RDZV_TIMEOUT=45\n"
        in text
    )
    assert "scontrol requeue" not in text and "slurm.requeue is false: the job ends" in text


def test_cpu_ranks_per_node_run_torchrun_with_cpus_for_each_rank() -> None:
    text = request_for(
        "tiny_ner", overrides=["resources.nodes=2", "resources.ranks_per_node=2", "resources.cpus_per_gpu=3"]
    ).materialize()
    assert "--cpus-per-task=6" in _options(text) and "--gres" not in text
    assert "--nproc-per-node 2 --rdzv-id" in text


def test_one_gpu_runs_the_job_directly_under_srun() -> None:
    text = request_for("llama4_scout_qlora").materialize()
    assert "srun --ntasks-per-node=1 --cpus-per-task=16 python -m jobs.train --run-dir /runs/" in text
    assert "torch.distributed.run" not in text and "--gres=gpu:a800:1" in _options(text)


def test_profile_options_account_qos_constraint_gpus_per_node_and_extras() -> None:
    data = load_cluster("a800").model_dump()
    data["slurm"].update(
        account="nlp", qos="high", constraint="a800&ib", gpu_request="gpus-per-node",
        python="/opt/py/bin/python",
        extra={"exclusive": True, "mail_type": "END", "comment": None, "reservation": False,
               "signal": "B:USR2@300", "cpus_per_task": 40},
    )  # fmt: skip
    profile = ClusterProfile.model_validate(data)
    recipe = load_recipe("ds1.5b_fft", ["resources.mem_gb=200"])
    run = Run("x-1", Path("/runs/x-1"), recipe, profile, code=fixed_code())
    text = SlurmBackend(profile).dryrun(run).materialize()
    options = _options(text)
    for expected in ("--account=nlp", "--qos=high", "--constraint='a800&ib'", "--gpus-per-node=a800:4",
                     "--exclusive", "--mail-type=END", "--mem=200G"):  # fmt: skip
        assert expected in options, expected
    assert not any(o.startswith(("--gres", "--comment", "--reservation", "--wckey")) for o in options)
    assert [o for o in options if o.startswith(("--signal", "--cpus-per-task"))] == [
        "--cpus-per-task=40", "--signal=B:USR2@300",
    ]  # fmt: skip
    assert "exec /opt/py/bin/python -m torch.distributed.run" in text


def test_deepspeed_on_one_gpu_still_runs_under_torchrun() -> None:
    text = request_for("ds1.5b_fft", overrides=["resources.gpus_per_node=1"]).materialize()
    assert "--nproc-per-node 1 " in text and "-m jobs.train --run-dir /runs/ds1.5b_fft-" in text


def test_cpu_job_asks_for_no_gpus() -> None:
    text = request_for("tiny_smoke", "dev-slurm").materialize()
    options = _options(text)
    assert "--cpus-per-task=1" in options and not any(o.startswith(("--gres", "--gpus")) for o in options)
    assert "python -m jobs.smoke --run-dir /runs/tiny_smoke-20260101-0000-0000" in text
    assert "cd /project || exit 1" in text
    assert "export PYTHONPATH=/runs/.snapshots/0123456789abcdef\nexport PYTHONSAFEPATH=1\n" in text
    assert "export LAUNCH_CODE=0123456789abcdef\n" in text


def test_array_tasks_must_share_resources() -> None:
    from launcher.errors import UserError

    one = request_for("tiny_smoke", "dev-slurm", n=1)
    two = request_for("tiny_smoke", "dev-slurm", ["resources.gpus_per_node=2"], n=2)
    with pytest.raises(UserError, match="other resources"):
        SlurmBackend(one.run.profile).array_script([one, two], 2)
