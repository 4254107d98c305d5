"""Dies at start: a module it imports is not installed."""

import os

import pyslip_check_missing_module  # noqa: F401

print("listening on", os.environ["PORT"])
