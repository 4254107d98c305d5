# shellcheck shell=bash
# The unprivileged user that runs the rootless e2e tests. Sourced; needs common.sh.

# Start of a free 65536-wide range in /etc/subuid or /etc/subgid ($1).
next_free_subid() {
	awk -F: 'BEGIN { next_id = 100000 } NF >= 3 && $2 + $3 > next_id { next_id = $2 + $3 } END { print next_id }' "$1" 2>/dev/null || echo 100000
}

user_ensure() {
	local user=$PYSLIP_TEST_USER_NAME start
	if ! id -u "$user" >/dev/null 2>&1; then
		log "creating user $user"
		useradd -m -s /bin/bash "$user"
	fi
	touch /etc/subuid /etc/subgid
	if ! grep -q "^$user:" /etc/subuid; then
		start=$(next_free_subid /etc/subuid)
		usermod --add-subuids "$start-$((start + 65535))" "$user"
	fi
	if ! grep -q "^$user:" /etc/subgid; then
		start=$(next_free_subid /etc/subgid)
		usermod --add-subgids "$start-$((start + 65535))" "$user"
	fi
	user_check_userns
	user_check_repo_access
}

user_check_userns() {
	local err
	if err=$(runuser -u "$PYSLIP_TEST_USER_NAME" -- unshare -Ur true 2>&1); then
		return 0
	fi
	local msg="unprivileged user namespaces do not work for $PYSLIP_TEST_USER_NAME (unshare -Ur: $err)."
	local f
	for f in /proc/sys/kernel/unprivileged_userns_clone /proc/sys/user/max_user_namespaces \
		/proc/sys/kernel/apparmor_restrict_unprivileged_userns; do
		[[ -r $f ]] && msg+=" $(basename "$f")=$(<"$f")"
	done
	die "$msg. Enable them: sysctl -w kernel.unprivileged_userns_clone=1 (Debian kernels), sysctl -w user.max_user_namespaces=15000 (if 0), sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 23.10+)"
}

# The e2e tests run the project's binaries (target*/ under the repository) as the
# test user: every directory on the way must be traversable by others.
user_check_repo_access() {
	local dir=$PYSLIP_REPO_ROOT/target blocked=""
	while [[ $dir != / ]]; do
		if [[ -d $dir && $(stat -c %A "$dir") != ?????????x && $(stat -c %A "$dir") != ?????????t ]]; then
			blocked+=" $dir"
		fi
		dir=$(dirname "$dir")
	done
	if [[ -n $blocked ]]; then
		warn "not traversable by others, so $PYSLIP_TEST_USER_NAME cannot run binaries under $PYSLIP_REPO_ROOT/target:$blocked (chmod o+x them)"
		return 0
	fi
	if ! runuser -u "$PYSLIP_TEST_USER_NAME" -- test -x "$PYSLIP_REPO_ROOT"; then
		warn "$PYSLIP_TEST_USER_NAME cannot enter $PYSLIP_REPO_ROOT"
	fi
}
