"""GPU-hours arithmetic: what the planner states for a recipe, what sacct's records add up to
(requeued starts included), the budget check, and hours from a run's own start and end times."""

from __future__ import annotations

import pytest

from launcher.backends.slurm.usage import parse_usage, tres_gpus
from launcher.config.cluster import load_cluster
from launcher.config.recipe import load_recipe
from launcher.errors import UserError
from launcher.plan import plan
from launcher.plan.report import gpu_hours_text
from launcher.runs.cost import Planned, check_budget, held_hours, held_in, hours_text, planned_hours


def test_plan_states_the_whole_recipe() -> None:
    """ds7b_fft on a800: 3 epochs x time per epoch x 8 GPUs; at most 72 h x 8 GPUs = 576."""
    recipe = load_recipe("ds7b_fft", [])
    p = plan(recipe, load_cluster("a800"))
    assert (recipe.train.epochs, p.gpus) == (3, 8)
    assert p.time_per_epoch_s is not None and p.gpu_hours is not None
    assert p.gpu_hours == pytest.approx(p.time_per_epoch_s * 3 * 8 / 3600)
    assert p.gpu_hours_max == 576.0
    assert p.to_json()["gpu_hours"] == round(p.gpu_hours, 3)
    assert gpu_hours_text(p).startswith(f"GPU-hours: ~{p.gpu_hours:,.1f} (3 epochs x ")


def test_plan_scales_with_epochs_and_gpus() -> None:
    """Twice the epochs, twice the GPU-hours; one epoch on 8 GPUs is 8 x the epoch's hours."""
    profile = load_cluster("a800")
    one = plan(load_recipe("ds7b_fft", ["train.epochs=1"]), profile)
    two = plan(load_recipe("ds7b_fft", ["train.epochs=2"]), profile)
    assert one.gpu_hours is not None and one.time_per_epoch_s is not None
    assert two.gpu_hours == pytest.approx(2 * one.gpu_hours)
    assert one.gpu_hours == pytest.approx(8 * one.time_per_epoch_s / 3600)


def test_max_steps_overrides_epochs_as_in_hf_trainer() -> None:
    """ds7b_fft on a800: 32,900 training samples of 140 tokens packed into 2 x 256-token micro-batches
    are 8,996 micro-steps, 1,125 per GPU of 8, ceil(1,125 / grad_accum 8) = 141 optimizer steps per
    epoch. max_steps 100 is 100/141 of one epoch's GPU-hours, whatever train.epochs says; 282 is two."""
    profile = load_cluster("a800")
    one = plan(load_recipe("ds7b_fft", ["train.epochs=1"]), profile)
    assert one.gpu_hours is not None
    short = plan(load_recipe("ds7b_fft", ["train.max_steps=100"]), profile)
    assert short.epochs == pytest.approx(100 / 141)
    assert short.gpu_hours == pytest.approx(one.gpu_hours * 100 / 141)
    assert gpu_hours_text(short).startswith(f"GPU-hours: ~{short.gpu_hours:,.1f} (0.709 epochs x ")
    assert any("train.max_steps 100 of 141 optimizer steps per epoch" in n for n in short.assumptions)
    long = plan(load_recipe("ds7b_fft", ["train.epochs=1", "train.max_steps=282"]), profile)
    assert long.gpu_hours == pytest.approx(2 * one.gpu_hours)


def test_plan_without_a_time_estimate() -> None:
    """tiny_smoke has no model to time: 0 without GPUs; with 2 GPUs no estimate, at most
    2 GPUs x 10 min = 1/3 GPU-hour."""
    profile = load_cluster("dev-slurm")
    assert plan(load_recipe("tiny_smoke", []), profile).gpu_hours == 0.0
    p = plan(load_recipe("tiny_smoke", ["resources.gpus_per_node=2"]), profile)
    assert p.gpu_hours is None and p.gpu_hours_max == pytest.approx(1 / 3)
    assert planned_hours(load_recipe("tiny_smoke", ["resources.gpus_per_node=2"]), p) == Planned(1 / 3, False)


SACCT = """\
500|REQUEUED|100|billing=2,cpu=2,gres/gpu:a800=2,gres/gpu=2,mem=1G,node=1
500|COMPLETED|260|billing=2,cpu=2,gres/gpu:a800=2,gres/gpu=2,mem=1G,node=1
501_0|COMPLETED|3600|cpu=1,gres/gpu:a800=1,node=1
501_1|NODE_FAIL|1800|cpu=8,gres/gpu=8,node=2
501_1|RUNNING|900|cpu=8,gres/gpu=8,node=2
501_[2-3]|PENDING|0|
502|COMPLETED|50|cpu=1,mem=1G,node=1
503|FAILED|999|cpu=1,gres/gpu=4,node=1
503|COMPLETED|36|cpu=1,gres/gpu=4,node=1
504|CANCELLED by 1000|7200|gres/gpu:a800=2,gres/gpu:h100=1
"""


def test_sacct_records_add_up() -> None:
    used = parse_usage(SACCT)
    assert used["500"].hours == pytest.approx((100 + 260) * 2 / 3600) and used["500"].final  # 0.2
    assert used["501_0"].hours == pytest.approx(1.0)  # typed GPUs only: 1 x 1 h
    assert used["501_1"].hours == pytest.approx((1800 + 900) * 8 / 3600)  # 6.0, still running
    assert not used["501_1"].final
    assert "501_2" not in used  # a pending array's record held nothing
    assert used["502"].hours == 0.0
    assert used["503"].hours == pytest.approx(36 * 4 / 3600)  # the FAILED record was another job
    assert used["504"].hours == pytest.approx(6.0) and used["504"].final  # 2 + 1 typed GPUs x 2 h


def test_tres_gpus() -> None:
    assert tres_gpus("billing=4,cpu=4,gres/gpu:a800=2,gres/gpu=2,mem=1G,node=1") == 2
    assert tres_gpus("cpu=4,gres/gpu:a800=2,gres/gpu:h100=3") == 5
    assert tres_gpus("cpu=4,gres/gpumem=80G,mem=1G") == 0
    assert tres_gpus("") == 0


def test_hours_from_start_and_end_times() -> None:
    assert held_hours(1000.0, 1000.0 + 5400, 4).hours == pytest.approx(6.0)
    running = held_hours(1000.0, None, 2, now=1000.0 + 1800)
    assert (running.hours, running.final) == (pytest.approx(1.0), False)
    assert held_in({"state": "cancelled", "ended": 5.0}, 8).hours == 0.0  # ended before it started
    assert held_in({"state": "pending"}, 8) is None


def test_budget() -> None:
    profile = load_cluster("dev-slurm")
    profile.limits.max_gpu_hours = 5.0
    check_budget([Planned(3.0), Planned(2.0)], profile)  # exactly the budget: allowed
    with pytest.raises(UserError) as err:
        check_budget([Planned(3.0), Planned(2.5)], profile)
    text = str(err.value)
    assert "\n" not in text and "~5.5 GPU-hours for 2 runs" in text and "--force" in text
    with pytest.raises(UserError, match=r"at most 6\.0 GPU-hours \(resources\.time x GPUs"):
        check_budget([Planned(6.0, estimated=False)], profile)
    profile.limits.max_gpu_hours = None
    check_budget([Planned(1e6)], profile)


def test_hours_text() -> None:
    assert [hours_text(h) for h in (0, 0.0333, 0.2, 7.16, 576)] == ["0", "0.033", "0.2", "7.2", "576"]
