"""Tables and text from registry rows and run files; views never ask a scheduler (the verbs refresh
the registry first) and never import launcher.runs.service or a backend.

Modules:

- `code`: Which code a run ran (`launch status RUN`, `launch show RUN`) and the table of `launch snapshots`.
- `listing`: Rich tables for `launch recipes` and `launch clusters`.
- `logs`: What `launch logs` shows: labelled stdout/stderr lines, merged by time, known noise left out.
- `run`: One run: `launch status RUN` (its facts, tasks and log tail) and `launch show RUN` (its recipe).
- `status`: `launch status` without a run: the --json shape's pydantic models, a run's facts from its files.
- `status_pages`: Which entries `launch status` shows, through the registry's indexes; `--all` streamed.
- `status_table`: `launch status`' table and --json shape as plain values; run facts cached in the registry.
- `sweeps`: A sweep's points: `launch status SWEEP`, its one-line summary, a point as text.
"""
