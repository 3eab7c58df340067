"""`launch` as a subprocess: refusals, dry runs and listings; no scheduler is reached."""
