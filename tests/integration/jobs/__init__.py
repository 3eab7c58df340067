"""A job run directly (`python -m jobs.<kind>` or its code in-process) on a tiny model, no backend."""
