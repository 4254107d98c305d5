# shellcheck shell=bash
# Shared constants and helpers for scripts/test-env.sh and its helpers.
# Sourced, never run; callers have `set -euo pipefail`.

PYSLIP_STATE_DIR=${PYSLIP_STATE_DIR:-/var/lib/pyslip-test}
PYSLIP_CACHE_DIR=${PYSLIP_CACHE_DIR:-/var/cache/pyslip-test}
PYSLIP_REPO_ROOT=${PYSLIP_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

PYSLIP_OPEN_PORT=5000
PYSLIP_AUTH_PORT=5001
PYSLIP_AUTH_USER=pyslip
PYSLIP_AUTH_PASSWORD=pyslip-test-pw
PYSLIP_AUTH_REALM=pyslip-test
PYSLIP_TEST_USER_NAME=pyslip-test

log() { printf '[test-env %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
warn() { printf '[test-env] WARNING: %s\n' "$*" >&2; }
die() {
	printf '[test-env] ERROR: %s\n' "$*" >&2
	exit 1
}

# Write stdin to $1 atomically (temp file in the same directory + rename).
write_atomic() {
	local dest=$1 tmp
	tmp=$(mktemp "${dest}.XXXXXX")
	cat >"$tmp"
	chmod "${2:-0644}" "$tmp"
	mv -f "$tmp" "$dest"
}

# True when the process in pidfile $1 is alive.
pidfile_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# PIDs of processes listening on 127.0.0.1:$1 or *:$1 (TCP), one per line.
port_listeners() {
	ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# HTTP status code of GET $1 (000 when nothing answers).
http_status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-2}" "$1" 2>/dev/null || true
}

# Stop the process in pidfile $1 (TERM, then KILL after ~5 s) and remove the pidfile.
stop_pidfile() {
	local pidfile=$1 pid i
	if pidfile_alive "$pidfile"; then
		pid=$(<"$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# Start "$@" fully detached (own session, no controlling terminal, stdin from
# /dev/null, output to log $2), record its pid in $1. Survives the caller exiting.
start_detached() {
	local pidfile=$1 logfile=$2
	shift 2
	# setsid -f forks, so $! would not be the daemon: let the child write its own pid.
	setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1
	local i
	for i in $(seq 50); do
		[[ -s $pidfile ]] && return 0
		sleep 0.1
	done
	die "could not start $1 (see $logfile)"
}
