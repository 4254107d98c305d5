"""Never listens: starts a child process (which the check must kill too) and waits. The child's
command line carries $ORPHAN_MARKER so a test can look for it."""

import os
import subprocess
import sys
import time

marker = os.environ.get("ORPHAN_MARKER", "pyslip-check-orphan")
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
print("starting up, very slowly", flush=True)
time.sleep(600)
