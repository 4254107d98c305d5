# shellcheck shell=bash
# Base image fixtures: python:<X.Y>-slim look-alikes built with mmdebstrap (Docker
# Hub is unreachable here), turned into OCI layouts by testdata/fixtures/make_image.py
# and pushed to the open registry (and 3.11 also to the auth registry).
# The suites in PYSLIP_FIXTURE_ARM64_SUITES also get a real linux/arm64 image in their
# index, its root filesystem built by mmdebstrap under qemu-user-static (minutes on 2
# cores: cached like the rest). Emulation builds the fixture and lets tests *run* arm64
# images; pyslip itself never uses it.
# Cache: $PYSLIP_CACHE_DIR/fixtures/<suite>/{rootfs.tar,rootfs-arm64.tar,python-version,
# python-version-arm64,layout/,summary.json} with key files, so a second run rebuilds
# nothing. Sourced; needs common.sh.

PYSLIP_FIXTURE_SUITES=(bookworm trixie sid)
PYSLIP_FIXTURE_ARM64_SUITES=(trixie)
PYSLIP_MAKE_IMAGE=$PYSLIP_REPO_ROOT/testdata/fixtures/make_image.py

fixture_expected_xy() {
	case $1 in
	bookworm) echo 3.11 ;;
	trixie) echo 3.13 ;;
	sid) echo 3.14 ;;
	*) echo "?" ;;
	esac
}

fixture_dir() { echo "$PYSLIP_CACHE_DIR/fixtures/$1"; }

# mmdebstrap arguments for suite $1 (without the output path).
fixture_mmdebstrap_args() {
	local suite=$1
	printf '%s\n' \
		--variant=minbase \
		--include=python3,python3-pip,python3-venv,ca-certificates \
		'--aptopt=Acquire::Check-Valid-Until "false"' \
		'--dpkgopt=path-exclude=/usr/share/man/*' \
		'--dpkgopt=path-exclude=/usr/share/info/*' \
		'--dpkgopt=path-exclude=/usr/share/doc/*' \
		'--dpkgopt=path-include=/usr/share/doc/*/copyright' \
		'--dpkgopt=path-exclude=/usr/share/locale/*' \
		'--dpkgopt=path-include=/usr/share/locale/locale.alias' \
		'--dpkgopt=path-exclude=/usr/share/lintian/*' \
		--format=tar \
		"$suite"
}

sha256_of_stdin() { sha256sum | cut -d' ' -f1; }

# Whether suite $1 gets a real arm64 image.
fixture_has_arm64() {
	local s
	for s in "${PYSLIP_FIXTURE_ARM64_SUITES[@]}"; do [[ $s == "$1" ]] && return 0; done
	return 1
}

# qemu-user-static's aarch64 handler registered with binfmt_misc (fix-binary flag), so that
# mmdebstrap can configure an arm64 root and podman can run arm64 images.
binfmt_ensure() {
	if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
			die "cannot mount binfmt_misc (needed to build and run the arm64 fixture)"
	fi
	if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
		update-binfmts --enable qemu-aarch64 >&2 || die "update-binfmts --enable qemu-aarch64 failed"
	fi
	[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || die "qemu-aarch64 is not registered with binfmt_misc"
}

# Build (if not cached) the arm64 root filesystem of suite $1 (same packages as the host's).
fixture_build_arm64() {
	local suite=$1 dir key
	dir=$(fixture_dir "$suite")
	local -a args
	mapfile -t args < <(fixture_mmdebstrap_args "$suite")
	key=$( (
		echo arm64
		printf '%s\n' "${args[@]}"
	) | sha256_of_stdin)
	if [[ -s $dir/rootfs-arm64.tar && -s $dir/python-version-arm64 && $(cat "$dir/rootfs-arm64.key" 2>/dev/null) == "$key" ]]; then
		return 0
	fi
	binfmt_ensure
	rm -f "$dir/rootfs-arm64.key" "$dir/rootfs-arm64.tar" "$dir/python-version-arm64" "$dir"/*.arm64.tmp*
	log "mmdebstrap $suite arm64 under qemu (minutes; cached afterwards)"
	local t0=$SECONDS
	# shellcheck disable=SC2016 # "$1" is the hook's argument (the root directory)
	mmdebstrap --arch=arm64 "${args[@]}" \
		--customize-hook="chroot \"\$1\" python3 -c 'import platform; print(platform.python_version())' >'$dir/python-version-arm64.tmp'" \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
		"$dir/rootfs-arm64.tmp.tar"
	mv "$dir/python-version-arm64.tmp" "$dir/python-version-arm64"
	mv "$dir/rootfs-arm64.tmp.tar" "$dir/rootfs-arm64.tar"
	echo "$key" >"$dir/rootfs-arm64.key"
	log "mmdebstrap $suite arm64 done in $((SECONDS - t0)) s: Python $(<"$dir/python-version-arm64")"
}

# Build (if not cached) the root filesystem and OCI layout of suite $1.
fixture_build() {
	local suite=$1 dir key lkey
	dir=$(fixture_dir "$suite")
	mkdir -p "$dir"
	local -a args
	mapfile -t args < <(fixture_mmdebstrap_args "$suite")
	key=$(printf '%s\n' "${args[@]}" | sha256_of_stdin)
	if [[ ! -s $dir/rootfs.tar || ! -s $dir/python-version || $(cat "$dir/rootfs.key" 2>/dev/null) != "$key" ]]; then
		rm -f "$dir/rootfs.key" "$dir/rootfs.tar" "$dir/python-version" "$dir"/*.tmp*
		log "mmdebstrap $suite (log: $dir/../$suite.log)"
		local t0=$SECONDS
		# shellcheck disable=SC2016 # "$1" is the hook's argument (the root directory)
		mmdebstrap "${args[@]}" \
			--customize-hook="chroot \"\$1\" python3 -c 'import platform; print(platform.python_version())' >'$dir/python-version.tmp'" \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
			"$dir/rootfs.tmp.tar"
		mv "$dir/python-version.tmp" "$dir/python-version"
		mv "$dir/rootfs.tmp.tar" "$dir/rootfs.tar"
		echo "$key" >"$dir/rootfs.key"
		log "mmdebstrap $suite done in $((SECONDS - t0)) s: Python $(<"$dir/python-version")"
	fi
	local -a other=()
	if fixture_has_arm64 "$suite"; then
		fixture_build_arm64 "$suite"
		other=(--other-rootfs "$dir/rootfs-arm64.tar" --other-python-version "$(<"$dir/python-version-arm64")")
	fi
	lkey=$( (
		cat "$PYSLIP_MAKE_IMAGE"
		echo "$key"
		cat "$dir/python-version"
		if ((${#other[@]})); then cat "$dir/rootfs-arm64.key" "$dir/python-version-arm64"; fi
	) | sha256_of_stdin)
	if [[ ! -s $dir/layout/index.json || ! -s $dir/summary.json || $(cat "$dir/layout.key" 2>/dev/null) != "$lkey" ]]; then
		rm -rf "$dir/layout" "$dir/layout.tmp" "$dir/layout.key" "$dir/summary.json"
		log "building OCI layout for $suite"
		python3 "$PYSLIP_MAKE_IMAGE" build --rootfs "$dir/rootfs.tar" \
			--python-version "$(<"$dir/python-version")" --suite "$suite" \
			--layout "$dir/layout.tmp" "${other[@]}" >"$dir/summary.json.tmp"
		mv "$dir/layout.tmp" "$dir/layout"
		mv "$dir/summary.json.tmp" "$dir/summary.json"
		echo "$lkey" >"$dir/layout.key"
	fi
}

# Push the fixture of suite $1 (only what the registries lack).
fixture_push() {
	local suite=$1 dir version xy
	dir=$(fixture_dir "$suite")
	version=$(<"$dir/python-version")
	xy=${version%.*}
	[[ $xy == "$(fixture_expected_xy "$suite")" ]] ||
		warn "$suite has Python $version, expected $(fixture_expected_xy "$suite"); tagging it $xy-slim"
	python3 "$PYSLIP_MAKE_IMAGE" push --layout "$dir/layout" --ref oci \
		--registry "127.0.0.1:$PYSLIP_OPEN_PORT" --repo library/python \
		--tag "$xy-slim" --tag "$version-slim"
	if [[ $suite == bookworm ]]; then
		# One fixture in Docker v2 media types (manifest list + schema2 manifests).
		python3 "$PYSLIP_MAKE_IMAGE" push --layout "$dir/layout" --ref dockerv2 \
			--registry "127.0.0.1:$PYSLIP_OPEN_PORT" --repo dockerv2/python \
			--tag "$xy-slim" --tag "$version-slim" --mount-from library/python
		# And one behind authentication, to pull a base image with credentials.
		PYSLIP_PUSH_PASSWORD=$PYSLIP_AUTH_PASSWORD python3 "$PYSLIP_MAKE_IMAGE" push \
			--layout "$dir/layout" --ref oci \
			--registry "127.0.0.1:$PYSLIP_AUTH_PORT" --repo library/python \
			--tag "$xy-slim" --tag "$version-slim" --user "$PYSLIP_AUTH_USER"
	fi
}

# Build and push every suite, in parallel (downloads overlap; each job logs to
# $PYSLIP_CACHE_DIR/fixtures/<suite>.log).
fixtures_ensure() {
	local suite failed=() pids=() i
	mkdir -p "$PYSLIP_CACHE_DIR/fixtures"
	command -v python3 >/dev/null || die "python3 missing"
	# Tests run the arm64 images under qemu even when the fixtures are cached.
	((${#PYSLIP_FIXTURE_ARM64_SUITES[@]} == 0)) || binfmt_ensure
	for suite in "${PYSLIP_FIXTURE_SUITES[@]}"; do
		(
			set -euo pipefail
			fixture_build "$suite"
			fixture_push "$suite"
		) >"$PYSLIP_CACHE_DIR/fixtures/$suite.log" 2>&1 &
		pids+=($!)
	done
	for i in "${!PYSLIP_FIXTURE_SUITES[@]}"; do
		suite=${PYSLIP_FIXTURE_SUITES[$i]}
		if wait "${pids[$i]}"; then
			grep -E '^(\[test-env|127\.0\.0\.1)' "$PYSLIP_CACHE_DIR/fixtures/$suite.log" | sed "s/^/  $suite: /" >&2 || true
		else
			failed+=("$suite")
			echo "---- $PYSLIP_CACHE_DIR/fixtures/$suite.log (last 30 lines) ----" >&2
			tail -n 30 "$PYSLIP_CACHE_DIR/fixtures/$suite.log" >&2
		fi
	done
	((${#failed[@]} == 0)) || die "fixture build failed for: ${failed[*]}"
}

# "X.Y" of every fixture, one per line (after fixtures_ensure).
fixtures_versions() {
	local suite
	for suite in "${PYSLIP_FIXTURE_SUITES[@]}"; do
		echo "$(<"$(fixture_dir "$suite")/python-version")"
	done
}
