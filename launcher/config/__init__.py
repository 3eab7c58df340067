"""What users write: the schema machinery, recipes, cluster profiles, sweep grids, YAML reading.

Modules:

- `checks`: Checks of a recipe's local inputs, run by the launcher before submitting and by jobs at start.
- `cluster`: Cluster profiles: everything site-specific, and the checks of a recipe against a profile.
- `grid`: A sweep's grid: the `sweep:` section of a recipe, `--grid KEY=V1,V2,...`, and its points.
- `recipe`: Recipe: one experiment, written once. Loading, `--set` overrides, validation, hashing.
- `schema`: Shared machinery for the YAML schemas: strict models, loading, readable errors, --set overrides.
- `yamlio`: YAML reading without pydantic, so listing verbs stay fast.
"""
