"""Log lines: their fields (the access line, a task's line, an error), EMF documents, the
terminal's text, and that no line is lost at exit or in a forked child."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.obs import logs
from shared.obs.logs import JsonFormatter, TextFormatter, configure_logging, flush_logs
from shared.obs.metrics import Metrics
from web.middleware import log_request

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BASE = ["ts", "level", "service", "logger", "msg"]


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logs._stop()
    root.handlers[:], root.level = handlers, level


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().rstrip("\n").split("\n")]


def test_access_task_and_error_lines_keep_their_fields_and_types() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "web", stream)
    log_request("POST", "/api/safetyheatmap/report/add", 202, 1.23456, "r-1")
    log_request("GET", "/healthz", 200, None, None)
    tasks = logging.getLogger("safetyheatmap.tasks")
    tasks.info(
        "reports stored",
        extra={"task": "store", "reports": 2, "stored": 1, "report_ids": ["a", "b"]},
    )
    try:
        raise KeyError("table")
    except KeyError:
        tasks.exception("task failed; %s", "to the dlq", extra={"task": "store", "receive": 3})
    access, anonymous, task, error = json_lines(stream)

    assert list(access) == [*BASE, "method", "path", "status", "duration_ms", "request_id"]
    assert TS.fullmatch(access["ts"])
    assert access["level"] == "info" and access["service"] == "web" and access["msg"] == "request"
    assert access["logger"] == "safetyheatmap.access"
    assert (access["method"], access["status"], access["duration_ms"]) == ("POST", 202, 1.23)
    assert access["request_id"] == "r-1"
    assert (anonymous["duration_ms"], anonymous["request_id"]) == (None, None)

    assert list(task) == [*BASE, "task", "reports", "stored", "report_ids"]
    assert (task["logger"], task["reports"], task["report_ids"]) == (
        "safetyheatmap.tasks",
        2,
        ["a", "b"],
    )

    assert list(error) == [*BASE, "task", "receive", "exc"]
    assert error["level"] == "error" and error["msg"] == "task failed; to the dlq"
    assert error["exc"].startswith("Traceback") and "KeyError: 'table'" in error["exc"]


def test_values_json_cannot_encode_are_written_as_text() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "worker", stream)
    logging.getLogger("safetyheatmap.x").info("odd", extra={"path": Path("/a"), "n": {1, 2}})
    (line,) = json_lines(stream)
    assert line["path"] == "/a" and line["n"] == "{1, 2}"


def test_logs_are_json_lines_and_emf_documents_stay_unwrapped() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "web", stream)
    logging.getLogger("safetyheatmap.test").info(
        "request", extra={"request_id": "abc", "duration_ms": 1.5}
    )
    stats = Metrics(interval=60)
    stats.count("ReportsAccepted")
    stats.flush()
    first, second = json_lines(stream)
    assert first["msg"] == "request" and first["request_id"] == "abc"
    assert first["service"] == "web" and first["level"] == "info"
    assert second["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SafetyHeatmap"
    assert second["ReportsAccepted"] == 1 and second["service"] == "web"


def test_a_terminal_gets_readable_lines() -> None:
    record = logging.makeLogRecord(
        {"msg": "request", "levelname": "INFO", "status": 202, "path": "/x"}
    )
    line = TextFormatter("web").format(record)
    assert "web INFO request" in line and "status=202" in line and "{" not in line
    emf = logging.makeLogRecord({"msg": "metrics", "emf": {"_aws": {}, "Lat": [1.0, 2.0, 9.0]}})
    assert "METRICS Lat=n=3,p50=2,max=9" in TextFormatter("web").format(emf)
    assert json.loads(JsonFormatter("w").format(emf)) == {
        "_aws": {},
        "Lat": [1.0, 2.0, 9.0],
        "service": "w",
    }
    stream = Terminal()
    configure_logging("INFO", "web", stream)
    log_request("GET", "/x", 304, 0.4, None)
    flush_logs()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d web INFO request  method=GET path=/x status=304 duration_ms=0.4 "
        r"request_id=null\n",
        stream.getvalue(),
    )


def test_levels_apply_and_metric_lines_go_out_whatever_the_level() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "web", stream)
    log_request("GET", "/x", 200, 0.1, None)  # INFO: below the level
    logging.getLogger("safetyheatmap.metrics").info("metrics", extra={"emf": {"A": 1}})
    logging.getLogger("botocore").info("noise")
    assert json_lines(stream) == [{"A": 1, "service": "web"}]


def test_a_second_configuration_writes_the_first_ones_lines_to_its_stream() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "web", first)
    log_request("GET", "/one", 200, 0.1, None)
    configure_logging("INFO", "web", second)
    log_request("GET", "/two", 200, 0.1, None)
    assert [line["path"] for line in json_lines(first)] == ["/one"]
    assert [line["path"] for line in json_lines(second)] == ["/two"]


def test_after_the_listener_stops_at_exit_lines_are_written_at_once() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "web", stream)
    log_request("GET", "/queued", 200, 0.1, None)
    logs._stop()  # what atexit does: the queue is drained
    assert json.loads(stream.getvalue())["path"] == "/queued"
    # A line from an atexit hook that runs later (the metrics' last flush): written at once.
    logging.getLogger("safetyheatmap.metrics").info("metrics", extra={"emf": {"Late": 1}})
    assert json.loads(stream.getvalue().splitlines()[-1]) == {"Late": 1, "service": "web"}


def test_a_forked_child_writes_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with path.open("w") as stream:
        configure_logging("INFO", "worker", stream)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: no listener thread, no atexit
            try:
                logging.getLogger("safetyheatmap.tasks").info("child", extra={"pid": os.getpid()})
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        logging.getLogger("safetyheatmap.tasks").info("parent")
        flush_logs()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(line["msg"] for line in lines) == ["child", "parent"]
    assert next(line for line in lines if line["msg"] == "child")["pid"] == pid
