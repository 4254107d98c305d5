#!/usr/bin/env bash
# Stop the test registries started by scripts/test-env.sh (both, or the ports given):
#   scripts/lib/registry-stop.sh            # 5000 and 5001
#   scripts/lib/registry-stop.sh 5001       # only the auth registry
# Useful for tests of an unreachable registry and for cleanup; test-env.sh restarts them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/registry.sh"
if (($# == 0)); then
	registries_stop
else
	for port in "$@"; do
		[[ $port == "$PYSLIP_OPEN_PORT" || $port == "$PYSLIP_AUTH_PORT" ]] ||
			die "unknown test registry port $port (want $PYSLIP_OPEN_PORT or $PYSLIP_AUTH_PORT)"
		registry_stop "$port"
	done
fi
