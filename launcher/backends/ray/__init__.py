"""The Ray backend: Ray jobs through the Jobs API, the cluster's lifecycle, arrays, the in-cluster agent.

Modules (each imports only those listed after it, `backend` aside, which imports them all):

- `backend`: Ray backend (the contract): every run is one Ray job; status, explain, logs, cancel,
  arrays and follow-on jobs.
- `array`: Ray arrays: N jobs with at most `max_parallel` unfinished, kept by a supervisor job in the cluster.
- `jobs`: the Jobs API of one profile's cluster: address, client, job specs and their YAML,
  submitting, the index of submitted jobs.
- `cluster`: Ray cluster lifecycle: the address of a cluster's Jobs API, starting a head on this machine,
  and the inventory of its nodes. No job logic here; `ray` itself is imported lazily.
- `agent`: What the Ray backend runs inside the Ray cluster: the job wrapper, the array supervisor,
  a follow-on job's entrypoint.
- `private`: every name of Ray's that Ray does not document as public, checked against the Ray
  version it names.
"""
