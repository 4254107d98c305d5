"""Validate a CycloneDX 1.6 JSON file against the official schema (cyclonedx-python-lib).

Usage: python validate_cyclonedx.py FILE   (exit 1 and the errors when invalid)
"""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(sys.argv[1], encoding="utf-8") as f:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(f.read())
if errors:
    print(errors, file=sys.stderr)
    sys.exit(1)
print("valid CycloneDX 1.6")
