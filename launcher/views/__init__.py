"""Tables and text from registry rows and run files; views never ask a scheduler.

Modules:

- `listing`: Rich tables for `launch recipes` and `launch clusters`, and `launch status RUN` (the run table
  of `launch status` is launcher/views/status.py).
- `logs`: What `launch logs` shows: labelled stdout/stderr lines, merged by time, known noise left out.
- `status`: `launch status` without a run: which runs to show, what each one's state means, and the table.
"""
