"""The local backend running real jobs (detached processes on this machine)."""
