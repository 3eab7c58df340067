"""The `token_classification` job kind: encoder baselines (`python -m jobs.token_classification --run-dir
DIR`).

Modules:

- `job`: Encoder token classification on GMB's IOB2 tags (ELECTRA, NuNER, MiniLM): train (jobs.trainer),
  then score (launcher.scoring.token_level; results through jobs.results).
"""
