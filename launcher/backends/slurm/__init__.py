"""The Slurm backend: sbatch scripts rendered by submitit, arrays, follow-on jobs, checkpoint-and-requeue.

Modules:

- `backend`: the Slurm backend (the contract): submit, arrays, follow-on jobs, batched status from
  squeue and sacct, explain, logs, cancel.
- `render`: sbatch scripts for one run, an array and a follow-on job; the one call of submitit's
  private renderer, checked against the submitit version it names.
- `parse`: Slurm's answers parsed: squeue/sacct lines into job infos and run states, sinfo into
  partitions, the pending reasons that never resolve.
- `failures`: how a job's earlier starts ended, and the node events behind a NODE_FAIL (sacctmgr,
  else sinfo -R), in words for `launch status`.
- `discover`: the cluster of this login node for `launch init`: partitions, their nodes' GPUs, CPUs,
  memory and limits, from scontrol.
- `usage`: GPU-hours a run's jobs used, from sacct: every start's elapsed time x its allocated GPUs.
- `limits`: what the cluster lets a user submit (MaxArraySize, MaxSubmitJobs), cached per profile, and
  a large submission split into arrays that fit, chained to honour --max-parallel.
- `queue`: one squeue (and sacct) answer shared for `slurm.poll_interval_s` by every `launch`
  process of the user on this machine, asked under a file lock.
- `commands`: Running Slurm's commands: a short timeout for queries, the whole process group killed when it
  passes, one error line for a missing, silent or refusing command, and sbatch's answer parsed strictly.
"""
