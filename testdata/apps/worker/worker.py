"""A background worker: no port; prints a heartbeat and exits cleanly on SIGTERM."""

import signal
import sys
import time

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("worker started", flush=True)
while running:
    print("tick", flush=True)
    time.sleep(1)
print("worker stopped", flush=True)
sys.exit(0)
