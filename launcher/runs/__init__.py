"""Runs: their ids, directories, launch.json, registry, checkpoints, progress, results and the service
that prepares, submits, refreshes and cancels them.

Modules:

- `checkpoints`: Checkpoint directories of a run, never taken for complete before they are (torch-free: the
  launcher lists them, jobs write them).
- `code`: Which code a run runs: its snapshot (or the live packages with --live-code), its working directory,
  the git state of the project and the launcher; the job's PYTHONPATH.
- `cost`: GPU-hours: planned for a submission (and the profile's budget), used by a run (usage.json).
- `find`: Finding a run from what the user typed: a run id, a unique id prefix, or a run directory.
- `history`: A training run's loss by step, read from files only (torch-free: bench and compare use it).
- `launch_info`: launch.json: what a run was launched with, the one typed reader and writer of the file.
- `logtimes`: When each log line was written: a side index beside a task's stdout/stderr files.
- `netfs`: Which filesystem holds a path: a network one (NFS, Lustre, GPFS, ...), where SQLite's WAL
  cannot work, or a local one.
- `pages`: Pages of the registry for `launch status`: which entries to show, found through its indexes.
- `progress`: `<run_dir>/progress.json`: where a job stands, written by the job (a training job every
  logging step, an evaluation after each batch) and read by `launch status` and `--follow` (a small file,
  never the logs).
- `refresh`: A run's backend, and refreshing runs' states from their schedulers (each asked once for all its
  unfinished jobs); a local run's without reading its profile.
- `registry`: SQLite registry of runs and their scheduler jobs under $LAUNCH_HOME (WAL on a local disk, a
  rollback journal and a lock file on a network filesystem), its schema upgraded in place.
- `rebuild`: `launch doctor --rebuild-registry`: a new registry from the run directories' launch.json.
- `results`: Evaluation bookkeeping shared by `launch reeval` and `jobs.evaluate`: which checkpoints, which
  eval recipe, where results go, and the fingerprint that says a result is current.
- `run`: A run: its id, its directory and launch.json, written only once everything validated.
- `snapshot`: Code snapshots beside the runs, content-addressed: plan (hash), store, list, prune.
- `service`: What the verbs do, apart from printing: prepare, submit and cancel runs.
- `state`: The states of a run (kept in the registry) and of a run's `--then` chain (chain/state.json).
"""
