"""Job kinds: the one table of kinds and each kind's rules and rendered configs.

Modules:

- `axolotl`: The axolotl config a recipe with `engine: axolotl` asks for, rendered into the run directory.
- `classify`: The `classify` section of a recipe and the rules of the classify job kind (torch-free).
- `deepspeed`: The DeepSpeed config a recipe asks for, rendered into the run directory as deepspeed.json.
- `spacy`: spaCy pipelines for the `spacy` job kind: which names a recipe may give, where they load from,
  the recipe section that tunes spaCy's training, and the rules a spaCy recipe must keep.
- `table`: The one table of job kinds: what each `recipe.job` is, asked by every other module.
"""
