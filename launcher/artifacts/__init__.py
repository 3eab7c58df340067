"""The artifact store (a local directory or S3) and what of a run is uploaded to it.

Modules:

- `store`: Artifact store: a local directory or `s3://bucket/prefix` (boto3), and its upload protocol.
- `uploads`: What of a run belongs in its artifact store, what made it there, and uploading the rest.
"""
