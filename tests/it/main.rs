//! Integration and end-to-end tests: the real `pyslip` binary, run as the unprivileged test user,
//! against the loopback registries and podman that `scripts/test-env.sh` starts.

mod support;

mod apps;
mod boot_check;
mod build_outputs;
mod cache_repo;
mod deps_cache;
mod disk;
mod errors;
mod interrupt;
mod layout;
mod multiarch;
mod no_namespaces;
mod plan_cli;
mod registry_auth;
mod reproducible;
mod sbom;
