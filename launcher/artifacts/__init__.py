"""The artifact store (a local directory or S3) and what of a run is uploaded to it.

Modules:

- `store`: the artifact store (`Store`, opened on a local directory or `s3://bucket/prefix`) and its
  upload protocol: manifests, verification, the COMPLETE marker last, retries, downloads.
- `transport`: the interface a store's bytes go through, and the types the store and both transports
  share (options, file entries, `StoreError`).
- `local`: the local-directory transport.
- `s3`: the S3 transport (boto3) and what its errors mean (retried or not, one line for people).
- `uploads`: what of a run belongs in its artifact store, what made it there, and uploading the rest.
"""

LEDGER = "uploads.json"
"""A run's upload ledger (`uploads`), named here so that `launch status` can look for it without
importing the store."""
