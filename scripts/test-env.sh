#!/usr/bin/env bash
# Bring a fresh Debian 12 machine (run as root) to a ready pyslip test environment:
#   - Debian packages (registry, podman, skopeo, mmdebstrap, docker.io, ...)
#   - registries on 127.0.0.1:5000 (open) and 127.0.0.1:5001 (htpasswd pyslip/pyslip-test-pw)
#   - base image fixtures 127.0.0.1:5000/library/python:{3.11,3.13,3.14}-slim (OCI index:
#     host platform + placeholder arm64/amd64 + attestation), dockerv2/python:3.11-slim
#     (Docker v2 media types), and 127.0.0.1:5001/library/python:3.11-slim
#   - podman configured for this VM, unprivileged user pyslip-test, dockerd
#   - SBOM validators (spdx-tools, cyclonedx-python-lib) in a venv
# Idempotent; a second run only checks (a few seconds). At the end it prints and writes
# /var/lib/pyslip-test/env, to be sourced by tests:  . /var/lib/pyslip-test/env
#
# Usage: scripts/test-env.sh            set up / check
#        scripts/test-env.sh --stop     stop the registries and dockerd
# Env:   PYSLIP_TEST_DOCKER=0           do not start dockerd
set -euo pipefail

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)
for f in common packages registry fixtures podman user dockerd validators; do
	# shellcheck source=/dev/null
	source "$LIB/$f.sh"
done

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
	case ${1:-} in
	"") ;;
	--stop)
		take_lock
		registries_stop
		dockerd_stop
		return 0
		;;
	-h | --help)
		usage
		return 0
		;;
	*)
		usage >&2
		return 2
		;;
	esac
	((EUID == 0)) || die "run as root (it installs packages and starts services)"
	local t0=$SECONDS docker_ok=""
	take_lock
	mkdir -p "$PYSLIP_STATE_DIR" "$PYSLIP_CACHE_DIR"

	packages_ensure
	registries_ensure
	user_ensure
	# dockerd starts in the background while the fixtures are built.
	if [[ ${PYSLIP_TEST_DOCKER:-1} != 0 ]]; then
		dockerd_ensure >"$PYSLIP_STATE_DIR/dockerd-ensure.log" 2>&1 &
		local dockerd_job=$!
	fi
	fixtures_ensure
	validators_ensure
	podman_ensure
	if [[ -n ${dockerd_job:-} ]]; then
		if wait "$dockerd_job"; then
			docker_ok=1
		fi
		cat "$PYSLIP_STATE_DIR/dockerd-ensure.log" >&2
	fi

	write_env "$docker_ok"
	log "test environment ready in $((SECONDS - t0)) s; source it with: . $PYSLIP_STATE_DIR/env"
	cat "$PYSLIP_STATE_DIR/env"
}

write_env() {
	{
		echo "# pyslip test environment, written by scripts/test-env.sh"
		echo "export PYSLIP_TEST_REGISTRY=127.0.0.1:$PYSLIP_OPEN_PORT"
		echo "export PYSLIP_TEST_AUTH_REGISTRY=127.0.0.1:$PYSLIP_AUTH_PORT"
		echo "export PYSLIP_TEST_AUTH_USER=$PYSLIP_AUTH_USER"
		echo "export PYSLIP_TEST_AUTH_PASSWORD=$PYSLIP_AUTH_PASSWORD"
		echo "export PYSLIP_TEST_USER=$PYSLIP_TEST_USER_NAME"
		echo "export PYSLIP_TEST_VALIDATORS=$PYSLIP_VALIDATORS_DIR/bin"
		echo "export PYSLIP_TEST_PYTHONS=\"$(fixtures_versions | tr '\n' ' ' | sed 's/ $//')\""
		if [[ -n $1 ]]; then
			echo "export PYSLIP_TEST_DOCKER=1"
		else
			echo "unset PYSLIP_TEST_DOCKER"
		fi
	} | write_atomic "$PYSLIP_STATE_DIR/env"
}

main "$@"
