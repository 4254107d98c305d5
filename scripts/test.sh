#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: sets up the test environment (packages,
# loopback registries, base image fixtures, podman, the unprivileged test user), then runs the
# lints and every test of the workspace. The e2e tests run pyslip as the unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "scripts/test.sh sets up system packages and services: run it as root (or with sudo)" >&2
	exit 1
fi

bash scripts/test-env.sh
# shellcheck disable=SC1091
source /var/lib/pyslip-test/env

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
