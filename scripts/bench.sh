#!/usr/bin/env bash
# Measure pyslip against buildah on the same app, in one run, each build pushed to the loopback
# registry, each scenario run RUNS times:
#   cold        empty cache / empty storage (pyslip: also no uv, no package cache)
#   cold-pkgs   pyslip: empty cache except the package-derived caches (uv's and pip's, the pinned
#               uv, the bytecode cache: the spec's "cold cache, warm package index cache");
#               buildah: as cold (its Containerfile has no cache mount)
#   noop        rebuild of an unchanged app
#   app-change  rebuild after a change to app code only
# PYSLIP_BENCH_SCENARIOS picks some of them (default: all four).
# Prints the median wall time per scenario, the pyslip/buildah ratio, and peak memory (RSS).
# With SUITE `isolation`, pyslip in the namespace sandbox is compared with pyslip without
# namespaces (`--sandbox none`) instead of buildah, same scenarios. With SUITE `multiarch`, pyslip
# builds linux/amd64 and linux/arm64 in one command (no emulation) and buildah builds only
# linux/arm64 under QEMU (binfmt), Python 3.13 (the fixture with an arm64 image).
# With SUITE `ci-fresh`, one scenario: a fresh CI runner rebuilding an unchanged app with a warm
# registry cache — pyslip with an empty cache dir and `--cache-repo`, buildah with fresh storage
# and `bud --layers --cache-from/--cache-to` (both caches in the loopback registry, warmed first).
# A cold run uses fresh cache/storage folders rather than deleting the old ones just before it:
# ext4 allocates inodes slowly right after mass deletions, which would time the benchmark's own
# clean-up rather than the builder.
#
#   sudo bash scripts/bench.sh [APP] [RUNS] [SUITE]
#     APP: a folder of testdata/apps, or GROUP/NAME of testdata (default stdlib; for multiarch
#     multiarch/fastapi-native); SUITE: buildah (default), isolation, multiarch or ci-fresh.
#     PYSLIP_BENCH_BIN=PATH times that binary (else a release build is made).
#
# Both builders run as the unprivileged test user (rootless: buildah with vfs storage and chroot
# isolation, as it must run without root), build from the same base image in the same registry,
# and push to it. Not a test: numbers vary with the machine; compare ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${3:-buildah}
app=${1:-$([[ $suite == multiarch ]] && echo multiarch/fastapi-native || echo stdlib)}
runs=${2:-5}
# pyslip's --platform and buildah's; empty: this machine's.
pyslip_platform='' buildah_platform=''
case $suite in
buildah) other=buildah ;;
isolation) other=nons ;;
ci-fresh) other=buildah ;;
multiarch)
	other=buildah pyslip_platform=linux/amd64,linux/arm64 buildah_platform=linux/arm64
	PYSLIP_BENCH_PYTHON=${PYSLIP_BENCH_PYTHON:-3.13}
	;;
*) echo "unknown suite $suite (buildah, isolation, multiarch, ci-fresh)" >&2; exit 2 ;;
esac
app_dir=testdata/apps/$app
[[ -d $app_dir ]] || app_dir=testdata/$app
[[ $(id -u) -eq 0 ]] || { echo "run as root (it sets up the test environment)" >&2; exit 1; }
bash scripts/test-env.sh >/dev/null
# shellcheck disable=SC1091
source /var/lib/pyslip-test/env
# PYSLIP_BENCH_BIN: time this pyslip binary instead of a fresh release build.
bin=${PYSLIP_BENCH_BIN:-}
if [[ -z $bin ]]; then
	cargo build --release --locked -q
	bin=target/release/pyslip
fi

user=$PYSLIP_TEST_USER
work=$(mktemp -d /tmp/pyslip-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
install -m 0755 "$bin" "$work/pyslip"
cp -r "$app_dir" "$work/app"
mkdir -p "$work/home" "$work/run" "$work/cache-0" "$work/buildah-0" "$work/nons-cache-0"
echo 0 >"$work/gen-pyslip"
echo 0 >"$work/gen-buildah"
echo 0 >"$work/gen-nons"
chown -R "$user:" "$work"
chmod 0700 "$work/run"
python=${PYSLIP_BENCH_PYTHON:-3.11}
base="$PYSLIP_TEST_REGISTRY/library/python:$python-slim"
repo="$PYSLIP_TEST_REGISTRY/bench/$app"
# ci-fresh: the registry caches of both builders (a fresh repository per run of the script).
ci_cache=""
[[ $suite == ci-fresh ]] && ci_cache="$PYSLIP_TEST_REGISTRY/bench/$app-cache-$$"

as_user() {
	runuser -u "$user" -- env HOME="$work/home" XDG_RUNTIME_DIR="$work/run" \
		XDG_CACHE_HOME="$work/${CACHE_PREFIX:-}cache-$(cat "$work/gen-${GEN:-pyslip}")" \
		PATH=/usr/local/bin:/usr/bin:/bin \
		SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$@"
}

# A Dockerfile doing what pyslip does for this app (base + app files + the same Cmd).
plan_json=$(as_user "$work/pyslip" plan "$work/app" --python "$python" --base-repo "$PYSLIP_TEST_REGISTRY/library/python" --json)
cmd=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["cmd"]["value"]))' <<<"$plan_json")
# The files the install reads (requirements.txt and what it includes with -r/-c).
inputs=$(python3 -c 'import json,sys; i=json.load(sys.stdin)["install"]; print(" ".join(i["inputs"]) if i else "")' <<<"$plan_json")

# The usual cached-dependencies Containerfile (requirements first), with the host CA bundle
# mounted for pip, as pyslip's sandbox does.
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
{
	echo "FROM $base"
	echo "WORKDIR /app"
	if [[ -f $work/app/requirements.txt ]]; then
		echo "COPY $inputs /app/"
		echo "RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install --no-cache-dir --root-user-action=ignore -r requirements.txt"
		echo "COPY . /app"
	elif [[ -f $work/app/pyproject.toml ]]; then
		# PEP 621 dependencies: installed with the project, as `pip install .` does.
		echo "COPY . /app"
		echo "RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install --no-cache-dir --root-user-action=ignore ."
	else
		echo "COPY . /app"
	fi
	echo "ENV PYTHONUNBUFFERED=1 PORT=8000"
	echo "CMD $cmd"
} >"$work/Containerfile"
chown "$user:" "$work/Containerfile"

pyslip_build() {
	as_user "$work/pyslip" build "$work/app" --python "$python" \
		--base-repo "$PYSLIP_TEST_REGISTRY/library/python" -t "$repo:pyslip" --push \
		--sandbox "${SANDBOX:-namespaces}" ${ci_cache:+--cache-repo "$ci_cache-pyslip"} \
		${pyslip_platform:+--platform "$pyslip_platform"}
}
# pyslip without namespaces, with caches of its own.
nons_build() { CACHE_PREFIX=nons- GEN=nons SANDBOX=none pyslip_build; }
buildah_() {
	local b
	b="$work/buildah-$(cat "$work/gen-buildah")"
	as_user buildah --storage-driver vfs --root "$b/root" --runroot "$b/run" "$@"
}
buildah_build() {
	# shellcheck disable=SC2046
	buildah_ bud --isolation chroot --tls-verify=false -q \
		$([[ -n $ci_cache ]] && echo --layers --cache-from "$ci_cache-buildah" --cache-to "$ci_cache-buildah") \
		${buildah_platform:+--platform "$buildah_platform"} \
		--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro" \
		-f "$work/Containerfile" -t "$repo:buildah" "$work/app" >/dev/null &&
		buildah_ push --tls-verify=false -q "$repo:buildah" >/dev/null
}
# next_gen TOOL → the number of a fresh, never-used cache/storage folder for TOOL
next_gen() {
	local g
	g=$(($(cat "$work/gen-$1") + 1))
	echo "$g" >"$work/gen-$1"
	echo "$g"
}
reset_pyslip() {
	local g
	g=$(next_gen pyslip)
	install -d -o "$user" "$work/cache-$g"
}
# A fresh cache dir (prefix $2 of generation folders of tool $1) holding only the previous one's
# package-derived caches: uv's and pip's package caches, the pinned uv, and the bytecode cache.
fresh_cache_keeping_pkgs() {
	local tool=$1 prefix=$2 old g d
	old=$(cat "$work/gen-$tool")
	g=$(next_gen "$tool")
	install -d -o "$user" "$work/$prefix-$g" "$work/$prefix-$g/pyslip"
	for d in uv-v1 pip-v1 tools-v1 pyc-v1; do
		[[ -d $work/$prefix-$old/pyslip/$d ]] && cp -a "$work/$prefix-$old/pyslip/$d" "$work/$prefix-$g/pyslip/"
	done
	return 0
}
reset_pyslip_pkgs() { fresh_cache_keeping_pkgs pyslip cache; }
reset_nons() {
	local g
	g=$(next_gen nons)
	install -d -o "$user" "$work/nons-cache-$g"
}
reset_nons_pkgs() { fresh_cache_keeping_pkgs nons nons-cache; }
reset_buildah() {
	local g
	g=$(next_gen buildah)
	install -d -o "$user" "$work/buildah-$g"
}
reset_buildah_pkgs() { reset_buildah; }
touch_app() { echo "# bench $RANDOM" >>"$work/app/main.py"; }

# time_one CMD... → "seconds maxrss_kb" of one run
time_one() {
	local out
	out=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -n 1)
	echo "$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# scenario NAME TOOL → prints "median_seconds peak_kb"
scenario() {
	local name=$1 tool=$2 times=() peak=0 i t m
	for ((i = 0; i < runs; i++)); do
		case $name in
		cold) "reset_$tool" ;;
		cold-pkgs) "${tool}_build" >/dev/null 2>&1; "reset_${tool}_pkgs" ;;
		noop) "${tool}_build" >/dev/null 2>&1 ;;
		app-change) "${tool}_build" >/dev/null 2>&1; touch_app ;;
		# warm the registry cache (and the target), then a runner with nothing local
		ci-fresh) "${tool}_build" >/dev/null 2>&1; "reset_$tool" ;;
		esac
		# The set-up's writes (a copied package cache, the warm-up build) are flushed first,
		# so the timed build does not pay for their writeback.
		sync
		read -r t m < <(time_one bash -c "${tool}_build")
		times+=("$t")
		((m > peak)) && peak=$m
	done
	printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | median)" "$peak"
}

export -f as_user pyslip_build nons_build buildah_ buildah_build next_gen reset_pyslip \
	reset_pyslip_pkgs reset_nons reset_nons_pkgs reset_buildah reset_buildah_pkgs touch_app
export work user python base repo ca ci_cache PYSLIP_TEST_REGISTRY pyslip_platform buildah_platform
printf 'app: %s, %s runs per scenario, base %s\n' "$app_dir" "$runs" "$base"
if [[ $suite == isolation ]]; then
	printf '%-12s %12s %12s %8s %14s %14s\n' scenario sandbox_s none_s ratio sandbox_rss none_rss
else
	printf '%-12s %12s %12s %8s %14s %14s\n' scenario pyslip_s buildah_s ratio pyslip_rss buildah_rss
fi
scenarios=${PYSLIP_BENCH_SCENARIOS:-cold cold-pkgs noop app-change}
[[ $suite == ci-fresh ]] && scenarios=ci-fresh
for s in $scenarios; do
	read -r pt pm < <(scenario "$s" pyslip)
	read -r bt bm < <(scenario "$s" "$other")
	ratio=$(awk -v a="$pt" -v b="$bt" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
	printf '%-12s %12s %12s %8s %11s MB %11s MB\n' "$s" "$pt" "$bt" "$ratio" $((pm / 1024)) $((bm / 1024))
done
