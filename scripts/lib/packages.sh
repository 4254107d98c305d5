# shellcheck shell=bash
# Debian packages the tests need. Sourced; needs common.sh.

PYSLIP_PACKAGES=(
	docker-registry skopeo umoci podman runc buildah mmdebstrap uidmap slirp4netns
	apache2-utils curl jq busybox-static docker.io python3 python3-venv ca-certificates iproute2
	# podman helpers installed with it on the reference machine (rootless overlay, --init)
	fuse-overlayfs catatonit
	# the arm64 fixture: mmdebstrap --arch=arm64 and `podman run --platform linux/arm64`
	qemu-user-static binfmt-support arch-test
)

packages_missing() {
	local -A installed=()
	local p status
	# One dpkg-query for all (it prints nothing for unknown packages and exits 1).
	while read -r p status; do
		if [[ $status == installed ]]; then installed[${p%%:*}]=1; fi
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PYSLIP_PACKAGES[@]}" 2>/dev/null || true)
	for p in "${PYSLIP_PACKAGES[@]}"; do
		[[ -n ${installed[$p]:-} ]] || echo "$p"
	done
}

packages_ensure() {
	local missing policy_added=""
	mapfile -t missing < <(packages_missing)
	((${#missing[@]})) || return 0
	log "installing Debian packages: ${missing[*]}"
	# No init system runs here, but maintainer scripts may still try to start
	# services (docker-registry's would listen on :5000 with its own htpasswd config,
	# docker.io's dockerd with defaults). Forbid that for this install only.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\n# temporary, from pyslip scripts/test-env.sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy_added=1
	fi
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
	} >&2 || rc=$?
	[[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d
	((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
	mapfile -t missing < <(packages_missing)
	((${#missing[@]} == 0)) || die "still not installed after apt-get: ${missing[*]}"
}
