"""Backends: where runs execute. Everything outside this package uses them through `base` and `spec`.

Modules:

- `base`: the backend contract (dry run, submit, arrays, follow-on jobs, status, logs, cancel) and
  BACKENDS, the one table that names the backends.
- `spec`: what to start, backend-neutral: a run's LaunchSpec, a follow-on job's FollowOn.
- `local`: jobs as detached process groups on this machine, GPUs handed out FIFO.
- `local_array`: a local array's runner, which starts its runs' supervisors as slots free.
- `slurm`: sbatch scripts rendered by submitit, arrays, checkpoint-and-requeue (a package).
- `ray`: Ray jobs through the Jobs API (a package).
- `procs`: processes named so that a reused PID is never taken for them.
- `follow`: reading and following log files, shared by the backends.
"""
