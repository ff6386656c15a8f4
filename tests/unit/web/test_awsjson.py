"""The web's calls without boto3's client (web/awsjson.py): SendMessage and the `tiles-written`
GetItem. botocore's signer with current credentials, moto's answers, botocore's failures."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from botocore.exceptions import ChecksumError, ClientError, EndpointConnectionError
from moto.server import ThreadedMotoServer

from shared.dev.devstack import free_port
from shared.store.aws import EMULATOR_CREDENTIALS
from shared.store.grids import GridRepository
from shared.store.keys import TILES_WRITTEN
from shared.store.provision import ensure_table
from web.awsjson import CONTENT_TYPE, AwsJson
from web.beacon import MetaItem
from web.sqs_send import SendMessage

WHEN = datetime(2026, 12, 2, 7, 30, 15, tzinfo=UTC)


SQS_PAYLOAD = b'{"QueueUrl":"https://q/1/q","MessageBody":"x"}'


def test_each_call_is_signed_by_botocore_with_the_credentials_current_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    keys = iter([("AKID1", "s3cr3t", None), ("AKID2", "rotated", "session-token/odd+=chars")])
    url = "https://sqs.eu-west-2.amazonaws.com"
    api = AwsJson(url, "eu-west-2", "sqs", "AmazonSQS", lambda: next(keys), 3.0)
    first, second = (api.headers("SendMessage", SQS_PAYLOAD) for _ in range(2))
    scope = "20261202/eu-west-2/sqs/aws4_request"
    assert first["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKID1/{scope}, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
    )
    assert "X-Amz-Security-Token" not in first
    assert second["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential=AKID2/{scope}, ")
    assert "x-amz-security-token" in second["Authorization"]  # signed, as AWS requires
    assert second["X-Amz-Security-Token"] == "session-token/odd+=chars"
    assert second["X-Amz-Date"] == "20261202T073015Z"
    assert second["Content-Type"] == CONTENT_TYPE
    assert second["X-Amz-Target"] == "AmazonSQS.SendMessage"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def sqs_client(url: str) -> Any:
    return boto3.client("sqs", endpoint_url=url, region_name="us-east-1", **EMULATOR_CREDENTIALS)


def test_a_message_sent_is_the_message_received(moto_url: str) -> None:
    sqs = sqs_client(moto_url)
    queue = sqs.create_queue(QueueName="lean-send")["QueueUrl"]
    send = SendMessage(moto_url, "us-east-1", lambda: ("testing", "testing", None), 3.0)
    body = json.dumps({"text": 'ünïcode \U0001f6a8 and "quotes"'})
    message_id = send(queue, body)
    (received,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert (received["MessageId"], received["Body"]) == (message_id, body)


def test_an_error_answer_is_a_client_error_with_its_code(moto_url: str) -> None:
    send = SendMessage(moto_url, "us-east-1", lambda: ("testing", "testing", None), 3.0)
    with pytest.raises(ClientError) as caught:
        send(f"{moto_url}/123456789012/no-such-queue", "x")
    assert caught.value.response["Error"]["Code"] == "QueueDoesNotExist"  # the JSON protocol's
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_nothing_listening_is_an_endpoint_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    send = SendMessage(url, "us-east-1", lambda: ("testing", "testing", None), 1.0)
    with pytest.raises(EndpointConnectionError):
        send(f"{url}/1/q", "x")


class _Flaky(BaseHTTPRequestHandler):
    """Throttles the first request, then accepts (checking the body it was sent)."""

    answers: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(request)
        status, answer = self.answers.pop(0)
        crc = answer.pop("__crc32", None)  # a DynamoDB checksum header to send, if any
        raw = json.dumps(answer).encode()
        self.send_response(status)
        if crc is not None:
            self.send_header("x-amz-crc32", str(zlib.crc32(raw) if crc == "right" else 12345))
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Flaky.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_throttling_is_retried_once(flaky: str) -> None:
    _Flaky.answers[:] = [
        (400, {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "slow down"}),
        (200, {"MessageId": "m-1", "MD5OfMessageBody": "9dd4e461268c8034f5c8564e155c67a6"}),
    ]
    send = SendMessage(flaky, "us-east-1", lambda: ("k", "s", None), 3.0)
    assert send(f"{flaky}/1/q", "x") == "m-1"
    assert [r["MessageBody"] for r in _Flaky.seen] == ["x", "x"]


def test_a_refusal_is_not_retried_and_a_wrong_checksum_fails(flaky: str) -> None:
    _Flaky.answers[:] = [
        (400, {"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": "no"}),
        (200, {"MessageId": "m-2", "MD5OfMessageBody": "0" * 32}),
    ]
    send = SendMessage(flaky, "us-east-1", lambda: ("k", "s", None), 3.0)
    with pytest.raises(ClientError) as caught:
        send(f"{flaky}/1/q", "x")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(Exception, match="MD5"):
        send(f"{flaky}/1/q", "x")
    assert len(_Flaky.seen) == 2


def test_https_is_verified_against_botocores_ca_bundle() -> None:
    from botocore.httpsession import get_cert_path  # noqa: PLC0415 - this test's alone

    send = SendMessage(
        "https://sqs.eu-west-2.amazonaws.com", "eu-west-2", lambda: ("k", "s", None), 3.0
    )
    pool = send.api.pool
    assert pool.scheme == "https" and pool.ca_certs == get_cert_path(True)


def ddb_json(url: str) -> AwsJson:
    creds = lambda: ("testing", "testing", None)  # noqa: E731 - one line
    return AwsJson(url, "us-east-1", "dynamodb", "DynamoDB_20120810", creds, 3.0)


def test_the_meta_item_reads_what_boto3_wrote_and_none_when_absent(moto_url: str) -> None:
    ddb = boto3.client(
        "dynamodb", endpoint_url=moto_url, region_name="us-east-1", **EMULATOR_CREDENTIALS
    )
    ensure_table(ddb, "grids-beacon")
    written = GridRepository(ddb, "grids-beacon")
    beacon = MetaItem(ddb_json(moto_url), "grids-beacon", TILES_WRITTEN)
    assert beacon() is None
    written.put_meta(TILES_WRITTEN, "run-7 ü")
    assert beacon() == written.get_meta(TILES_WRITTEN) == "run-7 ü"
    with pytest.raises(ClientError) as caught:
        MetaItem(ddb_json(moto_url), "no-such-table", TILES_WRITTEN)()
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_dynamodb_throttling_and_a_damaged_answer_are_retried_once(flaky: str) -> None:
    item = {"Item": {"value": {"S": "v1"}}, "__crc32": "right"}
    throttled = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    _Flaky.answers[:] = [
        (400, {"__type": throttled}),
        (200, dict(item)),
        (200, {**item, "__crc32": "wrong"}),
        (200, dict(item)),
        (200, {**item, "__crc32": "wrong"}),
        (200, {**item, "__crc32": "wrong"}),
    ]
    beacon = MetaItem(ddb_json(flaky), "grids", TILES_WRITTEN)
    assert beacon() == "v1"  # throttled, then answered
    assert beacon() == "v1"  # a wrong CRC32, then a right one
    with pytest.raises(ChecksumError):
        beacon()  # wrong twice
    assert len(_Flaky.seen) == 6
    assert _Flaky.seen[0] == {
        "TableName": "grids",
        "Key": {"pk": {"S": "meta"}, "sk": {"S": TILES_WRITTEN}},
    }
