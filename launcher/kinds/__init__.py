"""Job kinds: the one table of kinds, each kind's rules and the configs it renders. The rules read a
recipe through `view.RecipeView`, so kinds depend on the recipe's sections, never on `Recipe`.

Modules:

- `axolotl`: The axolotl config a recipe with `engine: axolotl` asks for, rendered into the run directory.
- `classify`: The rules of the classify job kind (torch-free); its `classify:` section is in
  launcher/config/kind_sections.py.
- `custom`: A lab's own job kinds: the module a recipe's `job` names in the user's project, found and
  checked at submit without importing it; `project_packages` for the code snapshot.
- `deepspeed`: The DeepSpeed config a recipe asks for, rendered into the run directory as deepspeed.json.
- `reads`: Which generic recipe keys each built-in job kind reads, and the file that reads each one.
- `spacy`: spaCy pipelines for the `spacy` job kind: which names a recipe may give, where they load from,
  the recipe section that tunes spaCy's training, and the rules a spaCy recipe must keep.
- `table`: The one table of job kinds: what each `recipe.job` is, asked by every other module.
- `view`: The recipe as the job-kind rules see it: a structural type, so that the kinds depend on the
  recipe's sections (launcher/config/sections.py) and not on `Recipe`, which validates itself with them.
"""
