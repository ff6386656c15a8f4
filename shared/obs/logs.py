"""Structured logs: one JSON object per line for machines, plain text in a terminal.

Fields passed with ``extra=`` become keys of the JSON line (``request_id``, ``duration_ms``,
``outcome``, ...). A record carrying ``emf`` (see ``shared.obs.metrics``) is printed as that
document itself, so CloudWatch finds the ``_aws`` key at the top level of the line.

Records are written by a ``QueueListener`` thread, not by the thread that logs them: measured on
cached reads under threads (docs/BENCHMARKS.md, third session), a write in the request's thread
cost 15-20 points of throughput (the write releases the GIL with the handler's lock held, and
the other request threads queue behind it). A request's cost is then a ``LogRecord`` and a
queue append. A killed process (SIGKILL) loses what the listener had not written yet; a warm
exit writes everything, and so does a forked child (its records are written directly).
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
import queue
import sys
import time
from logging.handlers import QueueHandler, QueueListener
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# One encoder for every line: json.dumps(default=str) builds a new one per call (4.5 against
# 3.3 us for an access line).
_encode = json.JSONEncoder(default=str).encode


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RESERVED and not key.startswith("_") and key != "emf"
    }


class JsonFormatter(logging.Formatter):
    """``ts`` (UTC, milliseconds), ``level``, ``service``, ``logger``, ``msg``, the record's
    extra fields, and ``exc`` (the traceback) when there is one."""

    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        emf = getattr(record, "emf", None)
        if isinstance(emf, dict):
            return _encode({**emf, "service": self._service})
        entry: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


class TextFormatter(logging.Formatter):
    """For a terminal: time, service, level, message, then the fields as key=value."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        emf = getattr(record, "emf", None)
        if isinstance(emf, dict):
            fields = {k: v for k, v in emf.items() if k != "_aws"}
            summary = " ".join(f"{k}={_short(v)}" for k, v in sorted(fields.items()))
            return f"{clock} {self._service} METRICS {summary}"
        extras = " ".join(f"{k}={_short(v)}" for k, v in _fields(record).items())
        line = f"{clock} {self._service} {record.levelname} {record.getMessage()}"
        line = f"{line}  {extras}" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _short(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        ordered = sorted(value)
        return f"n={len(ordered)},p50={ordered[len(ordered) // 2]:g},max={ordered[-1]:g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


class _Background(QueueHandler):
    """The root's one handler: queues records for a listener thread that writes them through
    ``writer``; with no listener (stopped at exit, or in a forked child, where the parent's
    thread does not exist) it writes them itself."""

    def __init__(self, writer: logging.Handler) -> None:
        super().__init__(queue.SimpleQueue())
        self.writer = writer
        self.listener: QueueListener | None = QueueListener(self.queue, writer)
        self.listener.start()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The queue stays in this process: the record travels as it is (traceback included),
        # but arguments are rendered now, as they may change before the listener formats.
        if not record.args:
            return record
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if self.listener is None:
            self.writer.handle(record)
        else:
            super().emit(record)

    def flush(self) -> None:
        """Write what is queued now: stop the listener (it drains the queue) and start anew."""
        if self.listener is not None:
            self.listener.stop()
            self.listener.start()

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()

    def forked(self) -> None:
        self.queue, self.listener = queue.SimpleQueue(), None  # the parent writes its own


def _background() -> _Background | None:
    handlers = logging.getLogger().handlers
    return next((h for h in handlers if isinstance(h, _Background)), None)


def _stop() -> None:
    handler = _background()
    if handler is not None:
        handler.stop()


def _forked() -> None:
    handler = _background()
    if handler is not None:
        handler.forked()


atexit.register(_stop)  # after anything registered later (the metrics' last flush): LIFO
os.register_at_fork(after_in_child=_forked)


def flush_logs() -> None:
    """Write every record logged so far (tests; the listener does it otherwise)."""
    handler = _background()
    if handler is not None:
        handler.flush()


def configure_logging(level: str, service: str, stream: Any = None) -> None:
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    text = bool(isatty is not None and isatty())
    writer = logging.StreamHandler(stream)
    writer.setFormatter(TextFormatter(service) if text else JsonFormatter(service))
    _stop()  # a second configuration (tests): the first one's lines are written first
    root = logging.getLogger()
    root.handlers[:] = [_Background(writer)]
    root.setLevel(level.upper())
    # Metric lines go out whatever the level: alarms depend on them.
    logging.getLogger("safetyheatmap.metrics").setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
