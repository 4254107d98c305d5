#!/usr/bin/env bash
# A Docker engine (Debian's docker.io 20.10) for `docker load` tests.
# No init system runs on these machines, so it is started here, in the background:
#   dockerd --iptables=false --bridge=none --insecure-registry 127.0.0.1:5000
# Run it (`scripts/lib/dockerd.sh [--stop]`) or source it and call dockerd_ensure.
# Log and pid: $PYSLIP_STATE_DIR/dockerd.{log,pid}.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	# shellcheck source=scripts/lib/common.sh
	source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

dockerd_pidfile() { echo "$PYSLIP_STATE_DIR/dockerd.pid"; }

# Start dockerd unless a working one answers; wait for `docker info`.
dockerd_ensure() {
	local _ pidfile
	pidfile=$(dockerd_pidfile)
	command -v dockerd >/dev/null || die "dockerd not installed (apt-get install docker.io)"
	if timeout 10 docker info >/dev/null 2>&1; then
		return 0
	fi
	mkdir -p "$PYSLIP_STATE_DIR"
	if ! pidfile_alive "$pidfile"; then
		log "starting dockerd (log: $PYSLIP_STATE_DIR/dockerd.log)"
		start_detached "$pidfile" "$PYSLIP_STATE_DIR/dockerd.log" \
			dockerd --iptables=false --ip-masq=false --bridge=none \
			--insecure-registry "127.0.0.1:$PYSLIP_OPEN_PORT" \
			--insecure-registry "127.0.0.1:$PYSLIP_AUTH_PORT" \
			--pidfile /run/docker.pid
	fi
	for _ in $(seq 120); do
		if timeout 5 docker info >/dev/null 2>&1; then
			log "dockerd is up ($(docker version -f '{{.Server.Version}}' 2>/dev/null), storage driver $(docker info -f '{{.Driver}}' 2>/dev/null))"
			return 0
		fi
		pidfile_alive "$pidfile" || break
		sleep 0.5
	done
	tail -n 20 "$PYSLIP_STATE_DIR/dockerd.log" >&2 || true
	warn "dockerd did not come up (log: $PYSLIP_STATE_DIR/dockerd.log)"
	return 1
}

dockerd_stop() {
	if pidfile_alive "$(dockerd_pidfile)"; then
		log "stopping dockerd (pid $(<"$(dockerd_pidfile)"))"
		stop_pidfile "$(dockerd_pidfile)"
	fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	case ${1:-} in
	--stop) dockerd_stop ;;
	"") dockerd_ensure ;;
	*) die "usage: $0 [--stop]" ;;
	esac
fi
