# shellcheck shell=bash
# SBOM validators for the tests, in a venv of the system python3 (not installed by hand):
#   - spdx-tools: `pyspdxtools -i FILE` parses and validates SPDX documents;
#   - cyclonedx-python-lib with its JSON-schema extra: validates CycloneDX 1.6 JSON.
# Rebuilt only when the pinned versions change. Sourced; needs common.sh.

PYSLIP_VALIDATORS_DIR=$PYSLIP_STATE_DIR/validators
PYSLIP_VALIDATORS_REQS=(
	"spdx-tools==0.8.5"
	"cyclonedx-python-lib[json-validation]==11.12.0"
)

validators_ensure() {
	local dir=$PYSLIP_VALIDATORS_DIR key
	key=$(printf '%s\n' "${PYSLIP_VALIDATORS_REQS[@]}")
	if [[ -x $dir/bin/pyspdxtools && -s $dir/pyslip.key && $(<"$dir/pyslip.key") == "$key" ]]; then
		return 0
	fi
	log "installing SBOM validators into $dir: ${PYSLIP_VALIDATORS_REQS[*]}"
	rm -rf "$dir"
	/usr/bin/python3 -m venv "$dir" || die "python3 -m venv $dir failed (is python3-venv installed?)"
	# The CA bundle makes pip work behind TLS-intercepting proxies too.
	PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} "$dir/bin/pip" install -q \
		--disable-pip-version-check "${PYSLIP_VALIDATORS_REQS[@]}" >&2 ||
		die "pip install ${PYSLIP_VALIDATORS_REQS[*]} failed"
	"$dir/bin/pyspdxtools" --help >/dev/null || die "pyspdxtools does not run"
	printf '%s\n' "$key" | write_atomic "$dir/pyslip.key"
}
