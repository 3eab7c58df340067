"""A real S3 endpoint on loopback (tests.support.s3_server) and a run stored in it."""
