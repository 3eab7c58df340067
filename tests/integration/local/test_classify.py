"""The classify job on the local backend: the hf engine (log-likelihood and generation) and a remote
endpoint without its key."""

from __future__ import annotations

import math

import pytest

from tests.support.classify import run_dir_of, run_job
from tests.support.cli import Launch
from tests.support.llm_server import MODEL


@pytest.mark.slow
def test_hf_loglik_gives_a_probability_over_the_candidates(launch: Launch) -> None:
    _, metrics, rows, _ = run_job(
        launch, "agnews_zero_shot", "--set", "eval.engine=hf", "--set", f"model.name_or_path={MODEL}",
        "--set", "classify.hf_mode=loglik", "--set", "classify.sample=3",
    )  # fmt: skip
    assert metrics["engine"] == "hf-loglik" and metrics["requests_sent"] == 3
    assert metrics["calibration"]["verbalized"] is None and metrics["calibration"]["logprob"] is not None
    for row in rows:
        probs = [p["confidence_logprob"] for p in row["predictions"]]
        assert (
            len(probs) == 4 and math.isclose(sum(probs), 1.0, abs_tol=1e-4) and probs == sorted(probs)[::-1]
        )
        assert set(row["loglik"]) == {"World", "Sports", "Business", "Sci/Tech"}


@pytest.mark.slow
def test_hf_generate_answers_like_the_api_engine(launch: Launch) -> None:
    _, metrics, rows, _ = run_job(
        launch, "agnews_zero_shot", "--set", "eval.engine=hf", "--set", f"model.name_or_path={MODEL}",
        "--set", "classify.sample=2", "--set", "eval.max_new_tokens=40",
    )  # fmt: skip
    assert metrics["engine"] == "hf-generate" and metrics["n"] == 2
    assert all(r["completion_tokens"] > 0 and r["raw"] for r in rows)


def test_a_remote_endpoint_without_its_key_fails_in_one_line(
    launch: Launch, launch_env: dict[str, str]
) -> None:
    launch_env.pop("OPENAI_API_KEY", None)
    proc = launch(
        "recipe", "agnews_zero_shot", "--cluster", "local", "--follow", "--set", "classify.sample=2"
    )
    assert proc.returncode != 0
    run_dir = run_dir_of(proc.stdout)
    err = (run_dir / "logs" / "task0.err").read_text()
    assert "$OPENAI_API_KEY is not set" in err and len(err.strip().splitlines()) == 1, err
    assert not (run_dir / "results").exists()
