//! OCI distribution client: references, auth, pull, push with cross-repository mounts, retries.
