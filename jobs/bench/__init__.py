"""The `bench` job kind: the benchmark table as a job (`python -m jobs.bench RUN_DIR ...`); the table
logic is torch-free and lives in `launcher.scoring.bench`, which `launch bench` uses too.
"""
