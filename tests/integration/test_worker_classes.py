"""The web under gevent's own HTTP server (WEB_WORKER_CLASS=gevent_pywsgi), the option the
ack-path benchmark measures: the same answers as the default class, over real HTTP, and idle
keep-alive connections closed after WEB_KEEPALIVE (web/pywsgi_worker.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from shared.ops.dlq import decode
from shared.store import aws
from tests.support import own_stack

pytestmark = pytest.mark.integration


def test_gevent_pywsgi_serves_the_api_and_enqueues(tmp_path: Path) -> None:
    env = {
        "SAFETYHEATMAP_WEB_WORKER_CLASS": "gevent_pywsgi",
        "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
        "SAFETYHEATMAP_WEB_KEEPALIVE": "1",
    }
    with own_stack(tmp_path, env) as stack:
        stack.start_emulator()
        stack.provision()
        stack.start_web()
        api = f"{stack.url}/api/safetyheatmap"
        session = requests.Session()  # keep-alive: several requests on one connection
        ok = session.post(
            f"{api}/report/add",
            json={"lat": 51.5, "lon": -0.12, "category": "theft", "description": "ü"},
            headers={"X-Request-Id": "pywsgi-1"},
            timeout=10,
        )
        assert ok.status_code == 202 and ok.headers["X-Request-Id"] == "pywsgi-1"
        report_id = ok.json()["id"]

        bad = session.post(
            f"{api}/report/add",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert bad.status_code == 400 and bad.json()["error"]
        big = session.post(
            f"{api}/report/add",
            data=b" " * (stack.settings().max_body_bytes + 1),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert big.status_code == 413
        head = session.head(f"{stack.url}/", timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert session.get(f"{stack.url}/healthz", timeout=10).status_code == 200

        sqs = aws.client(stack.settings(), "sqs")
        url = sqs.get_queue_url(QueueName=stack.settings().queue_name)["QueueUrl"]
        (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
        decoded = decode(message["Body"])
        assert decoded is not None
        (items,) = decoded[1]
        assert [(i["report"]["id"], i["request_id"]) for i in items] == [(report_id, "pywsgi-1")]
        assert items[0]["report"]["description"] == "ü"  # UTF-8 through the body and the message

        # An idle keep-alive connection is closed by the server (gevent's server alone keeps it
        # open for good: a slot of WEB_CONNECTIONS, and a stop waits GRACEFUL_TIMEOUT for it).
        with socket.create_connection(("127.0.0.1", stack.settings().port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += raw.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200")
            assert b"connection: close" not in answer.lower()  # kept alive, for now
            rest = b""
            while chunk := raw.recv(4096):  # until the server closes; the timeout fails the test
                rest += chunk
