"""Structured logs: one JSON object per line for machines, plain text in a terminal.

Fields passed with ``extra=`` become keys of the JSON line (``request_id``, ``duration_ms``,
``outcome``, ...). A record carrying ``emf`` (see ``shared.obs.metrics``) is printed as that
document itself, so CloudWatch finds the ``_aws`` key at the top level of the line.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import math
import os
import sys
import threading
import time
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RESERVED and not key.startswith("_") and key != "emf"
    }


def _timestamp(record: logging.LogRecord) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        emf = getattr(record, "emf", None)
        if isinstance(emf, dict):
            return json.dumps({**emf, "service": self._service}, default=str)
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


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


class _Sink:
    """How configure_logging's handler formats lines, for FastLog to write them directly."""

    def __init__(self, service: str, text: bool) -> None:
        self.service = service
        self.text = text
        self._second = -1
        self._prefix = ""

    def line(self, logger: str, msg: str, fields: dict[str, Any]) -> str:
        now = time.time()
        if self.text:
            clock = time.strftime("%H:%M:%S", time.localtime(now))
            extras = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
            line = f"{clock} {self.service} INFO {msg}"
            return f"{line}  {extras}" if extras else line
        second = int(now)
        if second != self._second:  # strftime once a second, not once a line
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        ts = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        if _BASE_KEYS.isdisjoint(fields):  # json.dumps's very output, built without its walk
            parts = [
                f'{{"ts": "{ts}", "level": "info", "service": {_quote(self.service)}, '
                f'"logger": {_quote(logger)}, "msg": {_quote(msg)}'
            ]
            parts.extend(f", {_quote(k)}: {_value(v)}" for k, v in fields.items())
            parts.append("}")
            return "".join(parts)
        entry = {"ts": ts, "level": "info", "service": self.service, "logger": logger, "msg": msg}
        entry.update(fields)
        return json.dumps(entry, default=str)


_BASE_KEYS = frozenset({"ts", "level", "service", "logger", "msg"})
_quote = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value, default=str)


class _Handler(logging.StreamHandler[Any]):
    """configure_logging's handler: a StreamHandler that also says how it formats, and holds
    the access lines that FastLog buffers until its flusher writes them."""

    FLUSH_EVERY_S = 0.1

    def __init__(self, stream: Any, sink: _Sink) -> None:
        super().__init__(stream)
        self.sink = sink
        self.pending: collections.deque[str] = collections.deque()
        self._pid = -1
        self._start_lock = threading.Lock()

    def buffer(self, line: str) -> None:
        self.pending.append(line)  # atomic: no lock, no system call in the request's thread
        if self._pid != os.getpid():  # gunicorn forks after configuring: a flusher per process
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="log-flusher", daemon=True).start()
            atexit.register(self.flush_pending)  # a warm exit loses no line

    def _flush_forever(self) -> None:
        tick = threading.Event()
        while not tick.wait(self.FLUSH_EVERY_S):
            try:
                self.flush_pending()
            except Exception:  # a log flusher must outlive a bad stream
                self.handleError(logging.makeLogRecord({"msg": "access log flush failed"}))

    def flush_pending(self) -> None:
        lines: list[str] = []
        while True:  # popleft, not len() then popleft: the flusher and exit may both be here
            try:
                lines.append(self.pending.popleft())
            except IndexError:
                break
        if lines:
            with self.lock or threading.RLock():  # the handler's own: lines never interleave
                self.stream.write("".join(lines))
                self.stream.flush()


class FastLog:
    """An INFO logger for the hottest line (the access log: one per request) that writes the
    very line the configured formatter would, without building a ``LogRecord``, and leaves
    the writing to a flusher thread (every 0.1 s, and at exit).

    Measured on cached reads (bench/load_reads.py): ``logging`` was a sixth of the web's CPU,
    and even one direct write per request cost 15-20 points of throughput against the
    baseline: the write releases the GIL, and with the handler's lock held the other request
    threads queue behind a thread that must win the GIL back. Buffered, a request appends a
    string; the price is that access lines reach the log up to 0.1 s late (after other lines
    written meanwhile) and a killed process (SIGKILL) loses at most that much of them.
    Whenever logging is set up otherwise (not by configure_logging, or another handler added,
    as pytest's caplog does), it is an ordinary ``logger.info``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)
        self._root = logging.getLogger()

    def info(self, msg: str, fields: dict[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = self._root.handlers
        handler = handlers[0] if len(handlers) == 1 else None
        if not isinstance(handler, _Handler) or logger.handlers or not logger.propagate:
            logger.info(msg, extra=fields)
            return
        handler.buffer(handler.sink.line(logger.name, msg, fields) + "\n")


def flush_access_log() -> None:
    """Write what FastLog holds now (tests; the flusher and exit do it otherwise)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Handler):
            handler.flush_pending()


def configure_logging(level: str, service: str, stream: Any = None) -> None:
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    text = bool(isatty is not None and isatty())
    handler = _Handler(stream, _Sink(service, text))
    handler.setFormatter(TextFormatter(service) if text else JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Metric lines go out whatever the level: alarms depend on them.
    logging.getLogger("safetyheatmap.metrics").setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
