"""Structured logs: one JSON object per line for machines, plain text in a terminal.

Fields passed with ``extra=`` become keys of the JSON line (``request_id``, ``duration_ms``,
``outcome``, ...). A record carrying ``emf`` (see ``shared.metrics``) is printed as that
document itself, so CloudWatch finds the ``_aws`` key at the top level of the line.
"""

from __future__ import annotations

import json
import logging
import sys
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


def configure_logging(level: str, service: str, stream: Any = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        handler.setFormatter(TextFormatter(service))
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Metric lines go out whatever the level: alarms depend on them.
    logging.getLogger("safetyheatmap.metrics").setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
