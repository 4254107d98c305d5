# shellcheck shell=bash
# The two loopback registries of the test environment (Debian's docker-registry,
# the reference distribution registry v2):
#   127.0.0.1:5000  open
#   127.0.0.1:5001  htpasswd (bcrypt) auth, user pyslip / pyslip-test-pw, realm pyslip-test
# Config, storage, pid and log live under $PYSLIP_STATE_DIR. Sourced; needs common.sh.

registry_dir() { echo "$PYSLIP_STATE_DIR/registry-$1"; }
registry_config() { echo "$PYSLIP_STATE_DIR/registry-$1.yml"; }
registry_pidfile() { echo "$PYSLIP_STATE_DIR/registry-$1.pid"; }
registry_log() { echo "$PYSLIP_STATE_DIR/registry-$1.log"; }

# The /v2/ status a healthy instance on port $1 answers with.
registry_expected_status() {
	if [[ $1 == "$PYSLIP_AUTH_PORT" ]]; then echo 401; else echo 200; fi
}

# Prints "changed" when the file was (re)written.
registry_write_htpasswd() {
	local file=$PYSLIP_STATE_DIR/htpasswd
	# bcrypt hashes are salted: only rewrite when the current file does not verify,
	# so an unchanged setup keeps an unchanged config (and a running registry).
	if [[ -s $file ]] && htpasswd -vb "$file" "$PYSLIP_AUTH_USER" "$PYSLIP_AUTH_PASSWORD" >/dev/null 2>&1; then
		return 0
	fi
	htpasswd -Bbn "$PYSLIP_AUTH_USER" "$PYSLIP_AUTH_PASSWORD" | write_atomic "$file" 0644
	echo changed
}

# Write the config for port $1; prints "changed" when its content changed.
registry_write_config() {
	local port=$1 cfg new
	cfg=$(registry_config "$port")
	# No blobdescriptor cache: an in-memory cache would keep answering "present"
	# for blobs after the storage directory was wiped under a running registry.
	new=$(
		cat <<-EOF
			# Written by scripts/test-env.sh; changes are overwritten.
			version: 0.1
			log:
			  level: warn
			  accesslog:
			    disabled: true
			  fields:
			    service: pyslip-test-registry-$port
			storage:
			  filesystem:
			    rootdirectory: $(registry_dir "$port")
			  delete:
			    enabled: true
			  maintenance:
			    uploadpurging:
			      enabled: false
			http:
			  addr: 127.0.0.1:$port
			  secret: pyslip-test-secret-$port
			  headers:
			    X-Content-Type-Options: [nosniff]
			health:
			  storagedriver:
			    enabled: false
		EOF
		if [[ $port == "$PYSLIP_AUTH_PORT" ]]; then
			cat <<-EOF
				auth:
				  htpasswd:
				    realm: $PYSLIP_AUTH_REALM
				    path: $PYSLIP_STATE_DIR/htpasswd
			EOF
		fi
	)
	if [[ -f $cfg && $(<"$cfg") == "$new" ]]; then
		return 0
	fi
	printf '%s\n' "$new" | write_atomic "$cfg"
	echo changed
}

# Kill whatever docker-registry holds port $1 that is not ours (for example the
# instance the Debian package's postinst may start with its own htpasswd config on
# :5000); refuse to touch any other kind of process.
registry_free_port() {
	local port=$1 pid comm ours=""
	pidfile_alive "$(registry_pidfile "$port")" && ours=$(<"$(registry_pidfile "$port")")
	for pid in $(port_listeners "$port"); do
		[[ $pid == "$ours" ]] && continue
		comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
		if [[ $comm == docker-registry || $comm == registry ]]; then
			warn "port $port is held by a foreign docker-registry (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)); stopping it"
			kill -TERM "$pid" 2>/dev/null || true
			local _
			for _ in $(seq 30); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
		else
			die "port $port is held by pid $pid ($comm), not a docker-registry; free it and rerun"
		fi
	done
}

registry_stop() {
	local port=$1
	if pidfile_alive "$(registry_pidfile "$port")"; then
		log "stopping registry on 127.0.0.1:$port (pid $(<"$(registry_pidfile "$port")"))"
	fi
	stop_pidfile "$(registry_pidfile "$port")"
}

# Make sure the registry on port $1 runs with the current config and answers.
# $2 = "changed" forces a restart (its config was rewritten).
registry_ensure() {
	local port=$1 changed=${2:-} want pidfile status _
	want=$(registry_expected_status "$port")
	pidfile=$(registry_pidfile "$port")
	if [[ -z $changed ]] && pidfile_alive "$pidfile"; then
		status=$(http_status "http://127.0.0.1:$port/v2/")
		if [[ $status == "$want" ]]; then
			return 0
		fi
		warn "registry on :$port (pid $(<"$pidfile")) answers /v2/ with $status, not $want; restarting it"
	fi
	registry_stop "$port"
	registry_free_port "$port"
	mkdir -p "$(registry_dir "$port")"
	log "starting registry on 127.0.0.1:$port"
	start_detached "$pidfile" "$(registry_log "$port")" \
		docker-registry serve "$(registry_config "$port")"
	for _ in $(seq 100); do
		status=$(http_status "http://127.0.0.1:$port/v2/" 1)
		[[ $status == "$want" ]] && return 0
		pidfile_alive "$pidfile" || break
		sleep 0.1
	done
	tail -n 20 "$(registry_log "$port")" >&2 || true
	die "registry on 127.0.0.1:$port did not come up (/v2/ answered ${status:-nothing}, want $want); log: $(registry_log "$port")"
}

registries_ensure() {
	mkdir -p "$PYSLIP_STATE_DIR"
	local port changed htpasswd_changed
	htpasswd_changed=$(registry_write_htpasswd)
	for port in "$PYSLIP_OPEN_PORT" "$PYSLIP_AUTH_PORT"; do
		changed=$(registry_write_config "$port")
		# the htpasswd file is read once at start-up
		[[ $port == "$PYSLIP_AUTH_PORT" && -n $htpasswd_changed ]] && changed=changed
		registry_ensure "$port" "$changed"
	done
}

registries_stop() {
	local port
	for port in "$PYSLIP_OPEN_PORT" "$PYSLIP_AUTH_PORT"; do
		registry_stop "$port"
	done
}
