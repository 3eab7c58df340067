"""The Slurm backend: sbatch scripts rendered by submitit, arrays, checkpoint-and-requeue.

Modules:

- `backend`: Slurm backend: sbatch scripts rendered by submitit, job arrays, checkpoint-and-requeue on USR2.
- `commands`: Running Slurm's commands: a short timeout for queries, the whole process group killed when it
  passes, one error line for a missing, silent or refusing command, and sbatch's answer parsed strictly.
"""
