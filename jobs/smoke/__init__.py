"""The `smoke` job kind: a model-free stand-in for training (`python -m jobs.smoke --run-dir DIR`).

Modules:

- `job`: A model-free stand-in for a training job: counts steps, checkpoints, resumes, obeys signals.
"""
