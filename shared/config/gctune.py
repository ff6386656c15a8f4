"""Garbage-collector settings for the long-running processes (web, worker, emulator).

CPython's default thresholds (700, 10, 10) run a full collection every ~70,000 container
allocations. In a process that holds boto3's service models, Falcon and moto's backends that is
hundreds of thousands of objects to scan, a pause of tens of milliseconds that every request in
flight waits out: at 1,000 reports/s it was most of the acknowledgement path's p99 (bench/
load_ack.py: 100-139 ms with the defaults, 54-63 ms with these). The fix is the usual one for
pre-forked servers: move what exists after start-up out of the collector's sight
(``gc.freeze``) and collect the young generations less often. Reference cycles are still
collected; the heap grows by at most one young generation's worth between collections.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 100)


def tune() -> None:
    """Call once the process's long-lived objects exist (after the fork, after imports)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
