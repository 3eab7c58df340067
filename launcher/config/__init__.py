"""What users write: the schema machinery, recipes and their sections, cluster profiles, sweep grids,
YAML reading. Nothing here imports a job kind's rules except `recipe`, which validates with them.

Modules:

- `checks`: Checks of a recipe's local inputs, run by the launcher before submitting and by jobs at start.
- `cluster`: Cluster profiles: everything site-specific, and the checks of a recipe against a profile.
- `duration`: Slurm-style durations (`resources.time`, a profile's `limits.max_time`), apart from the
  recipe sections so that a profile is read without them.
- `grid`: A sweep's grid: the `sweep:` section of a recipe, `--grid KEY=V1,V2,...`, and its points.
- `kind_sections`: Recipe sections that one job kind owns: `classify:` (the classify kind) and `spacy:` (the
  spacy kind).
- `project`: a user's project (launch.toml beside recipes/ and cluster/) and `launch init`, which writes
  one with a profile of this machine (Slurm's scontrol, nvidia-smi or the CPUs).
- `recipe`: Recipe: one experiment, written once. Loading, `--set` overrides, validation, hashing.
- `schema`: Shared machinery for the YAML schemas: strict models, loading, readable errors, --set overrides.
- `sections`: The sections of a recipe (model, lora, quantization, distributed, resources, data, train,
  eval, tracking, artifacts): strict models with the research's defaults. `Recipe`
  (launcher/config/recipe.py) puts them together with the job-kind rules.
- `yamlio`: YAML reading without pydantic, so listing verbs stay fast.
"""
