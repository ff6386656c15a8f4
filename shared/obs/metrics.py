"""Metrics as CloudWatch Embedded Metric Format (EMF) lines, aggregated per process.

A process records counts and observations; every ``FLUSH_INTERVAL`` seconds (and when a value
array reaches EMF's 100-value limit) it writes one JSON line per dimension combination with the
``_aws`` metadata CloudWatch Logs needs to extract the metrics. Counts are summed, observations
are kept as value arrays, so percentiles stay exact and a busy process writes a handful of lines
a minute instead of one per event.

Every metric is published without dimensions (what the alarms use, e.g. ``TaskFailed``) and, when
the call names dimensions (``Reason``, ``Task``), also per value of those: the dimension sets are
``[[]]`` plus the sorted names. Lines go through the ``safetyheatmap.metrics`` logger, whose
record carries the document in ``emf``; ``shared.obs.logs`` prints it unwrapped (JSON) or as a short
summary (terminal). This writer is ours (a few dozen lines) rather than ``aws-embedded-metrics``,
which probes the EC2/ECS metadata endpoints on first use and is built around asyncio.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

NAMESPACE = "SafetyHeatmap"
"""Must equal METRIC_NAMESPACE in infra/safetyheatmap_infra/app_stack.py (the alarms read it)."""

FLUSH_INTERVAL = 10.0
MAX_VALUES = 100
"""EMF accepts at most 100 values per metric per line."""

Sink = Callable[[dict[str, Any]], None]
Dims = tuple[tuple[str, str], ...]

log = logging.getLogger("safetyheatmap.metrics")


def log_sink(document: dict[str, Any]) -> None:
    log.info("metrics", extra={"emf": document})


class Metrics:
    def __init__(
        self,
        sink: Sink = log_sink,
        *,
        namespace: str = NAMESPACE,
        interval: float = FLUSH_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._namespace = namespace
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        # dims -> name -> (unit, summed count | list of observations)
        self._counts: dict[Dims, dict[str, tuple[str, float]]] = {}
        self._values: dict[Dims, dict[str, tuple[str, list[float]]]] = {}
        self._last_flush = clock()

    def count(self, name: str, value: float = 1, *, unit: str = "Count", **dims: str) -> None:
        key = _dims(dims)
        with self._lock:
            group = self._counts.setdefault(key, {})
            _, total = group.get(name, (unit, 0.0))
            group[name] = (unit, total + value)
        self._maybe_flush(full=False)

    def observe(self, name: str, value: float, *, unit: str = "Milliseconds", **dims: str) -> None:
        key = _dims(dims)
        with self._lock:
            group = self._values.setdefault(key, {})
            group.setdefault(name, (unit, []))[1].append(round(float(value), 3))
            full = len(group[name][1]) >= MAX_VALUES
        self._maybe_flush(full=full)

    def observe_many(
        self, name: str, values: list[float], *, unit: str = "Milliseconds", **dims: str
    ) -> None:
        """Several observations at once: one lock for a batch's worth (the enqueuer records
        each report's latency when its message is accepted)."""
        key = _dims(dims)
        with self._lock:
            group = self._values.setdefault(key, {})
            observed = group.setdefault(name, (unit, []))[1]
            observed.extend(round(float(v), 3) for v in values)
            full = len(observed) >= MAX_VALUES
        self._maybe_flush(full=full)

    def flush(self) -> int:
        """Write what was recorded since the last flush; returns the number of lines."""
        with self._lock:
            counts, values = self._counts, self._values
            self._counts, self._values = {}, {}
            self._last_flush = self._clock()
        lines = 0
        for key in sorted(set(counts) | set(values)):
            metrics: dict[str, tuple[str, Any]] = dict(counts.get(key, {}))
            observed = values.get(key, {})
            # Value arrays longer than EMF allows go out over several lines.
            chunks = max((len(v) for _, v in observed.values()), default=0)
            for start in range(0, max(chunks, 1), MAX_VALUES):
                part = dict(metrics) if start == 0 else {}
                for name, (unit, vals) in observed.items():
                    if vals[start : start + MAX_VALUES]:
                        part[name] = (unit, vals[start : start + MAX_VALUES])
                if part:
                    self._sink(self.document(key, part))
                    lines += 1
        return lines

    def document(self, dims: Dims, metrics: dict[str, tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in dims]
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [[], names] if names else [[]],
                        "Metrics": [
                            {"Name": name, "Unit": unit}
                            for name, (unit, _) in sorted(metrics.items())
                        ],
                    }
                ],
            }
        }
        doc.update(dict(dims))
        for name, (_, value) in metrics.items():
            doc[name] = value
        return doc

    def _maybe_flush(self, *, full: bool) -> None:
        if full or self._clock() - self._last_flush >= self._interval:
            self.flush()


def _dims(dims: dict[str, str]) -> Dims:
    return tuple(sorted((k, str(v)) for k, v in dims.items()))


# --- the process's instance ------------------------------------------------------------------
# Metrics are process-wide like logging: gunicorn workers and Celery children each get their own
# on first use after the fork, with a daemon thread that flushes an idle process's last values.
_current: tuple[int, Metrics] | None = None
_state_lock = threading.Lock()


def metrics() -> Metrics:
    """The process's instance. The lock is taken only to create it: every request and task
    asks for it, and with 64 request threads a lock taken on each call convoyed them (py-spy
    of the web at 1,000 reports/s: 40 % of its threads' samples waiting here)."""
    global _current  # noqa: PLW0603 - one instance per process, like logging's root
    current = _current  # one read: the pid and its instance together
    if current is not None and current[0] == os.getpid():
        return current[1]
    with _state_lock:
        if _current is None or _current[0] != os.getpid():
            instance = Metrics()
            _current = (os.getpid(), instance)
            threading.Thread(
                target=_flush_forever, args=(instance,), name="emf-flush", daemon=True
            ).start()
            atexit.register(instance.flush)
        return _current[1]


def _flush_forever(instance: Metrics) -> None:
    while True:
        time.sleep(instance._interval)
        try:
            instance._maybe_flush(full=False)
        except Exception:  # metrics must never take a process down
            log.exception("metrics flush failed")
