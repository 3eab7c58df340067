"""The dev Slurm cluster (cluster/dev/slurm-up.sh); every test here is marked `slurm`."""
