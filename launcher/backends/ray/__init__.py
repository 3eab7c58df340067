"""The Ray backend: Ray jobs through the Jobs API, the cluster's lifecycle, arrays, the in-cluster agent.

Modules:

- `agent`: What the Ray backend runs inside the Ray cluster: the job wrapper and the array supervisor.
- `array`: Ray arrays: N jobs with at most `max_parallel` unfinished, kept by a supervisor job in the cluster.
- `backend`: Ray backend: every run is one Ray job, submitted through the Ray Jobs API.
- `cluster`: Ray cluster lifecycle: the address of a cluster's Jobs API, starting a head on this machine,
  and the inventory of its nodes. No job logic here; `ray` itself is imported lazily.
"""
