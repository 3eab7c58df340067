"""The research loop over runs and the backend contract: sweeps, re-evaluation, `--then` chains, compare.

Modules:

- `chain`: `--then`: what runs after a training run without the user's shell: evaluate, then bench.
- `compare`: `launch compare RUN RUN ...`: what differs between runs, and how they did, side by side.
- `reeval`: `launch reeval`: evaluate a training run's complete checkpoints, each as its own eval run.
- `sweep`: `launch sweep`: one run per point of a grid, all validated and planned before any is submitted.
"""
