# shellcheck shell=bash
# podman configuration that works in these VMs (crun and systemd cgroups do not),
# plain-HTTP access to the loopback registries, and a run check of each fixture.
# Sourced; needs common.sh.

PYSLIP_CONTAINERS_CONF=/etc/containers/containers.conf
PYSLIP_REGISTRIES_DROPIN=/etc/containers/registries.conf.d/50-pyslip-test.conf

# Set [containers] default_ulimits = [], [engine] runtime = "runc" and
# cgroup_manager = "cgroupfs" in containers.conf, keeping everything else in the
# file. Prints "changed" when the file was rewritten.
podman_containers_conf() {
	mkdir -p /etc/containers
	python3 - "$PYSLIP_CONTAINERS_CONF" <<-'EOF'
		import os, re, sys, tomllib
		path = sys.argv[1]
		want = {
		    "containers": [("default_ulimits", "[]", [])],
		    "engine": [("runtime", '"runc"', "runc"), ("cgroup_manager", '"cgroupfs"', "cgroupfs")],
		}
		text = open(path).read() if os.path.exists(path) else ""
		try:
		    have = tomllib.loads(text)
		except tomllib.TOMLDecodeError as e:
		    sys.exit(f"{path} is not valid TOML ({e}); fix or remove it")
		if all(have.get(t, {}).get(k) == v for t, kvs in want.items() for k, _, v in kvs):
		    sys.exit(0)
		lines = text.splitlines()
		for table, kvs in want.items():
		    header = next((i for i, l in enumerate(lines) if re.match(rf"\s*\[{table}\]\s*(#.*)?$", l)), None)
		    if header is None:
		        lines += ["", f"[{table}]"]
		        header = len(lines) - 1
		    end = next((i for i in range(header + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
		    for key, value, _ in kvs:
		        setting = f"{key} = {value}  # pyslip test-env"
		        # A multi-line value (default_ulimits = [\n ...\n]) is replaced whole.
		        found = None
		        for i in range(header + 1, end):
		            if re.match(rf"\s*{key}\s*=", lines[i]):
		                found = i
		                break
		        if found is None:
		            lines.insert(header + 1, setting)
		            end += 1
		            continue
		        stop = found
		        if lines[found].split("=", 1)[1].strip().startswith("[") and "]" not in lines[found]:
		            while stop + 1 < end and "]" not in lines[stop]:
		                stop += 1
		        lines[found:stop + 1] = [setting]
		        end -= stop - found
		new = "\n".join(lines).lstrip("\n") + "\n"
		tomllib.loads(new)
		tmp = f"{path}.tmp{os.getpid()}"
		with open(tmp, "w") as f:
		    f.write(new)
		os.chmod(tmp, 0o644)
		os.replace(tmp, path)
		print("changed")
	EOF
}

# Mark the loopback registries insecure (plain HTTP) for podman/buildah/skopeo.
podman_registries_dropin() {
	local new loc
	new=$(
		echo "# Written by pyslip scripts/test-env.sh: the test registries speak plain HTTP."
		for loc in "127.0.0.1:$PYSLIP_OPEN_PORT" "127.0.0.1:$PYSLIP_AUTH_PORT" \
			"localhost:$PYSLIP_OPEN_PORT" "localhost:$PYSLIP_AUTH_PORT"; do
			printf '\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$loc"
		done
	)
	mkdir -p "$(dirname "$PYSLIP_REGISTRIES_DROPIN")"
	if [[ -f $PYSLIP_REGISTRIES_DROPIN && $(<"$PYSLIP_REGISTRIES_DROPIN") == "$new" ]]; then
		return 0
	fi
	printf '%s\n' "$new" | write_atomic "$PYSLIP_REGISTRIES_DROPIN"
	echo changed
}

podman_ensure() {
	local changed
	changed=$(podman_containers_conf)$(podman_registries_dropin)
	[[ -n $changed ]] && log "podman configured ($PYSLIP_CONTAINERS_CONF, $PYSLIP_REGISTRIES_DROPIN)"
	podman_verify
}

# Run every fixture once with podman (as root). Skipped when the same configs and
# the same fixture digests were verified before.
podman_verify() {
	local stamp=$PYSLIP_STATE_DIR/podman-verified key version out
	key=$( (
		cat "$PYSLIP_CONTAINERS_CONF" "$PYSLIP_REGISTRIES_DROPIN"
		cat "$PYSLIP_CACHE_DIR"/fixtures/*/summary.json
		podman --version
	) | sha256sum | cut -d' ' -f1)
	[[ $(cat "$stamp" 2>/dev/null) == "$key" ]] && return 0
	local image=127.0.0.1:$PYSLIP_OPEN_PORT/library/python:3.11-slim
	podman_pull "$image"
	out=$(without_lock podman run --rm --network host "$image" python3 -c 'print(42)' 2>"$PYSLIP_STATE_DIR/podman-run.err") || true
	[[ $out == 42 ]] || die "podman run $image printed '$out', want 42: $(cat "$PYSLIP_STATE_DIR/podman-run.err")"
	while read -r version; do
		image=127.0.0.1:$PYSLIP_OPEN_PORT/library/python:${version%.*}-slim
		podman_pull "$image"
		out=$(without_lock podman run --rm --network host "$image" \
			python -c 'import platform; print(platform.python_version())' 2>"$PYSLIP_STATE_DIR/podman-run.err") || true
		[[ $out == "$version" ]] ||
			die "podman run $image printed '$out', want '$version': $(cat "$PYSLIP_STATE_DIR/podman-run.err")"
		log "podman runs $image (Python $out)"
	done < <(fixtures_versions)
	echo "$key" | write_atomic "$stamp"
}

podman_pull() {
	without_lock podman pull -q "$1" >/dev/null 2>"$PYSLIP_STATE_DIR/podman-pull.err" ||
		die "podman pull $1 failed: $(cat "$PYSLIP_STATE_DIR/podman-pull.err")"
}
