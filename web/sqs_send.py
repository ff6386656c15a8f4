"""SQS SendMessage as one signed HTTP POST: the acknowledgement path's only call to AWS.

botocore spends ~3 ms of CPU on a SendMessage (measured against the embedded emulator: some
3,000 Python calls through its event hooks, models, serializer and parser), where the request
is a JSON body, four headers and a Signature Version 4. At 1,000 reports/s that was a sixth of
the web process's CPU, and the process's CPU is what its latency tail waits for. This sends the
same request (the AWS JSON protocol, as botocore does for SQS) for ~1.2 ms, and fails the way
botocore does: :class:`ClientError` for an error answer, :class:`EndpointConnectionError` or
:class:`ReadTimeoutError` when SQS cannot be reached or does not answer, one retry for those
and for throttling and 5xx answers (botocore's standard mode with two attempts). The
signature is checked against botocore's own signer (tests/unit/test_sqs_send.py); everything
else the web asks of SQS (the queue's URL, readiness) still goes through boto3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path

from shared.aws import Credentials
from shared.taskmsg import encode

TARGET = "AmazonSQS.SendMessage"
CONTENT_TYPE = "application/x-amz-json-1.0"
ATTEMPTS = 2
RETRY_CODES = frozenset(
    {"RequestThrottled", "ThrottlingException", "Throttling", "ServiceUnavailable", "InternalError"}
)


class SendMessage:
    """``send(queue_url, body) -> message id``, signed for `region` with `credentials`."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Credentials,
        timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._host = urlsplit(self._endpoint).netloc
        self._region = region
        self._credentials = credentials
        self._clock = clock
        # One send is in flight per process (web/enqueue.py): a small pool is plenty. HTTPS is
        # verified against the CA bundle botocore would use.
        tls = {"ca_certs": get_cert_path(True)} if self._endpoint.startswith("https:") else {}
        self._pool = urllib3.connection_from_url(
            self._endpoint,
            maxsize=2,
            block=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=False,
            **tls,
        )
        self._signing_key: tuple[tuple[str, str], bytes] | None = None

    def __call__(self, queue_url: str, body: str) -> str:
        payload = encode({"QueueUrl": queue_url, "MessageBody": body}).encode()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(payload, body)
            except (ClientError, EndpointConnectionError, ReadTimeoutError) as exc:
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def headers(self, payload: bytes, now: datetime) -> dict[str, str]:
        """The request's headers, Authorization included (Signature Version 4)."""
        access_key, secret, token = self._credentials()
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": stamp,
            "x-amz-target": TARGET,
        }
        if token:
            headers["x-amz-security-token"] = token
        names = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                names,
                hashlib.sha256(payload).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/sqs/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._key(secret, day), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature.hexdigest()}"
        )
        return headers

    def _attempt(self, payload: bytes, body: str) -> str:
        headers = self.headers(payload, self._clock())
        try:
            answer = self._pool.urlopen("POST", "/", body=payload, headers=headers)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=self._endpoint) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise EndpointConnectionError(endpoint_url=self._endpoint) from exc
        data = _json(answer.data)
        if answer.status != 200:
            code = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{answer.status}"
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": str(data.get("message", ""))},
                    "ResponseMetadata": {"HTTPStatusCode": answer.status},
                },
                "SendMessage",
            )
        expected = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        if data.get("MD5OfMessageBody") != expected:  # as botocore checks it
            raise ChecksumError(
                checksum_type="MD5",
                expected_checksum=expected,
                actual_checksum=str(data.get("MD5OfMessageBody")),
            )
        return str(data["MessageId"])

    def _key(self, secret: str, day: str) -> bytes:
        """The day's signing key, derived once a day (four HMACs) rather than per request."""
        if self._signing_key is None or self._signing_key[0] != (secret, day):
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, "sqs", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._signing_key = ((secret, day), key)
        return self._signing_key[1]


def _retryable(exc: Exception) -> bool:
    if not isinstance(exc, ClientError):
        return True  # could not connect, or no answer in time
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or status == 429 or exc.response["Error"]["Code"] in RETRY_CODES


def _json(raw: bytes) -> dict[str, object]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
