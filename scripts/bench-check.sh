#!/usr/bin/env bash
# Measure what the boot check adds to a build: the same app-code change built RUNS times without
# and RUNS times with --check (the check runs each time: the app layer, so the image config,
# changes), release binary, as the unprivileged test user, pushing to the loopback registry.
# Prints the median wall time of each and their difference.
#
#   sudo bash scripts/bench-check.sh [APP] [RUNS]   APP: a folder of testdata/apps (default stdlib)
#
# Not a test: numbers vary with the machine and its load.
set -euo pipefail
cd "$(dirname "$0")/.."

app=${1:-stdlib}
runs=${2:-3}
[[ $(id -u) -eq 0 ]] || { echo "run as root (it sets up the test environment)" >&2; exit 1; }
bash scripts/test-env.sh >/dev/null 2>&1
# shellcheck disable=SC1091
source /var/lib/pyslip-test/env
cargo build --release --locked -q

user=$PYSLIP_TEST_USER
work=$(mktemp -d /tmp/pyslip-bench-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
install -m 0755 target/release/pyslip "$work/pyslip"
cp -r "testdata/apps/$app" "$work/app"
mkdir -p "$work/home" "$work/run" "$work/cache"
chown -R "$user:" "$work"
chmod 0700 "$work/run"
repo="$PYSLIP_TEST_REGISTRY/bench-check/$app"

as_user() {
	runuser -u "$user" -- env HOME="$work/home" XDG_RUNTIME_DIR="$work/run" \
		XDG_CACHE_HOME="$work/cache" PATH=/usr/local/bin:/usr/bin:/bin \
		SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$@"
}
build() {
	as_user "$work/pyslip" build "$work/app" --base-repo "$PYSLIP_TEST_REGISTRY/library/python" \
		-t "$repo:1" --push "$@" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; return 1; }
}
# The file the server imports (or the first Python file): a comment appended changes the app layer.
entry=$(as_user "$work/pyslip" plan "$work/app" --base-repo "$PYSLIP_TEST_REGISTRY/library/python" --json |
	python3 -c 'import json,sys; a=json.load(sys.stdin)["app"]; print(a["file"] if a else "")')
[[ -n $entry ]] || entry=$(cd "$work/app" && find . -name '*.py' | sort | head -n 1)
touch_app() { echo "# bench $RANDOM$RANDOM" >>"$work/app/$entry"; }
seconds() {
	local start end
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm-up: base root unpacked, dependency layer cached, base in the registry.
build --check
without=() with=()
for ((i = 0; i < runs; i++)); do
	touch_app
	without+=("$(seconds build)")
	touch_app
	with+=("$(seconds build --check)")
done
a=$(printf '%s\n' "${without[@]}" | median)
b=$(printf '%s\n' "${with[@]}" | median)
printf 'app: testdata/apps/%s, app-code change, %s runs each (median)\n' "$app" "$runs"
printf 'without --check  %s s   (%s)\n' "$a" "${without[*]}"
printf 'with --check     %s s   (%s)\n' "$b" "${with[*]}"
awk -v a="$a" -v b="$b" 'BEGIN { printf "added by --check %.3f s\n", b - a }'
