# shellcheck shell=bash
# Shared constants and helpers for scripts/test-env.sh and its helpers.
# Sourced, never run; callers have `set -euo pipefail`.

PYSLIP_STATE_DIR=${PYSLIP_STATE_DIR:-/var/lib/pyslip-test}
PYSLIP_CACHE_DIR=${PYSLIP_CACHE_DIR:-/var/cache/pyslip-test}
PYSLIP_REPO_ROOT=${PYSLIP_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# shellcheck disable=SC2034 # used by the files that source this one
PYSLIP_OPEN_PORT=5000
# shellcheck disable=SC2034
PYSLIP_AUTH_PORT=5001
# shellcheck disable=SC2034
PYSLIP_AUTH_USER=pyslip
# shellcheck disable=SC2034
PYSLIP_AUTH_PASSWORD=pyslip-test-pw
# shellcheck disable=SC2034
PYSLIP_AUTH_REALM=pyslip-test
# shellcheck disable=SC2034
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

# True when the process in pidfile $1 is alive (a zombie not yet reaped by an
# init that is slow to reap counts as dead).
pidfile_alive() {
	local pid state
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
	[[ -n $state && $state != Z ]]
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
	local pidfile=$1 pid _
	if pidfile_alive "$pidfile"; then
		pid=$(<"$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			pidfile_alive "$pidfile" || break
			sleep 0.1
		done
		if pidfile_alive "$pidfile"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
}

# Start "$@" fully detached (own session, no controlling terminal, stdin from
# /dev/null, output to log $2), record its pid in $1. Survives the caller exiting.
start_detached() {
	local pidfile=$1 logfile=$2
	shift 2
	# setsid -f forks, so $! would not be the daemon: let the child write its own pid.
	# shellcheck disable=SC2016 # expanded by the inner bash
	without_lock setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1
	local _
	for _ in $(seq 50); do
		[[ -s $pidfile ]] && return 0
		sleep 0.1
	done
	die "could not start $1 (see $logfile)"
}

# Serialise concurrent runs of test-env.sh (several engineers share a machine).
# The lock fd must not leak into daemons, or they would hold the lock forever:
# everything long-lived is started through without_lock.
take_lock() {
	exec {PYSLIP_LOCK_FD}>/run/lock/pyslip-test-env.lock
	if ! flock -n "$PYSLIP_LOCK_FD"; then
		log "another scripts/test-env.sh is running; waiting for it"
		flock -w 900 "$PYSLIP_LOCK_FD" || die "timed out waiting for /run/lock/pyslip-test-env.lock"
	fi
}

# Run "$@" with the lock fd (if any) closed.
without_lock() {
	if [[ -n ${PYSLIP_LOCK_FD:-} ]]; then
		"$@" {PYSLIP_LOCK_FD}>&-
	else
		"$@"
	fi
}
