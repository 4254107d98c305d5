#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up the loopback registry and base image
# fixtures, build pyslip, build testdata/apps/stdlib into an image AS AN UNPRIVILEGED USER, push it,
# run it with podman and print its HTTP reply.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "scripts/demo.sh sets up system packages and services: run it as root (or with sudo)" >&2
	exit 1
fi

bash scripts/test-env.sh
# shellcheck disable=SC1091
source /var/lib/pyslip-test/env

cargo build --release --locked
work=$(mktemp -d /tmp/pyslip-demo.XXXXXX)
trap 'podman rm -f pyslip-demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
install -m 0755 target/release/pyslip "$work/pyslip"
cp -r testdata/apps/stdlib "$work/app"
chown -R "$PYSLIP_TEST_USER" "$work"

image="$PYSLIP_TEST_REGISTRY/demo/stdlib:latest"
echo "+ pyslip build (as $PYSLIP_TEST_USER) → $image"
runuser -u "$PYSLIP_TEST_USER" -- env HOME="$work" XDG_CACHE_HOME="$work/cache" \
	"$work/pyslip" build "$work/app" --python 3.11 \
	--base-repo "$PYSLIP_TEST_REGISTRY/library/python" -t "$image" --push

port=18080
echo "+ podman run --network host -e PORT=$port $image"
podman rm -f pyslip-demo >/dev/null 2>&1 || true
podman run -d --rm --name pyslip-demo --network host -e PORT=$port --pull always "$image" >/dev/null
for _ in $(seq 50); do
	if reply=$(curl -sf "http://127.0.0.1:$port/healthz"); then
		echo "+ curl http://127.0.0.1:$port/healthz"
		echo "$reply"
		exit 0
	fi
	sleep 0.2
done
echo "the container did not answer on port $port; its log:" >&2
podman logs pyslip-demo >&2 || true
exit 1
