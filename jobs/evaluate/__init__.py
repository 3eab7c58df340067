"""The `evaluate` job kind: generation and scoring of one checkpoint (`python -m jobs.evaluate --run-dir
DIR`).

Modules:

- `job`: Generation and scoring of one checkpoint for generative NER (engines: jobs.engines; results
  written, uploaded and logged through jobs.results).
"""
