"""AWS JSON-protocol calls as one signed HTTP POST each: the web's calls on its hot paths.

botocore spends 1.2-3 ms of CPU on a call, depending on the box (measured against the embedded
emulator: some 3,000 Python calls through its event hooks, models, serializer and parser), where
the request is a JSON body, four headers and a Signature Version 4. The web makes two calls
often enough for that to count: SendMessage for every batch of reports (web/sqs_send.py; a
sixth of the web's CPU at 1,000 reports/s) and a GetItem of the `tiles-written` item every
``GRID_CHECK_S`` while reads come (web/beacon.py). This sends the same request for a third to
a half of the CPU (bench/send_cost.py), and fails the way botocore does: :class:`ClientError`
with the error code for an error answer, :class:`EndpointConnectionError` or
:class:`ReadTimeoutError` when the service cannot be reached or does not answer, and one retry
for those, for throttling and 5xx answers and for a DynamoDB answer whose CRC32 does not match
(botocore's standard mode with two attempts). The signature is checked against botocore's own
signer (tests/unit/web/test_awsjson.py); every other call still goes through boto3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path

from shared.model.taskmsg import encode
from shared.store.aws import Credentials

CONTENT_TYPE = "application/x-amz-json-1.0"
ATTEMPTS = 2
RETRY_CODES = frozenset(
    {
        "RequestThrottled",  # SQS
        "ThrottlingException",
        "Throttling",
        "ServiceUnavailable",
        "InternalError",
        "ProvisionedThroughputExceededException",  # DynamoDB
        "RequestLimitExceeded",
        "InternalServerError",
    }
)


class AwsJson:
    """``call(operation, params) -> answer`` for one service at one endpoint, signed for
    `region` with `credentials`; `target` is the service's X-Amz-Target prefix."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        service: str,
        target: str,
        credentials: Credentials,
        timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint = endpoint_url.rstrip("/")
        self._host = urlsplit(self.endpoint).netloc
        self._region = region
        self._service = service
        self._target = target
        self._credentials = credentials
        self._clock = clock
        # Each caller has one call in flight at a time (the batcher's sender, the beacon's one
        # look): a small pool is plenty. HTTPS is verified against botocore's CA bundle.
        tls = {"ca_certs": get_cert_path(True)} if self.endpoint.startswith("https:") else {}
        self.pool = urllib3.connection_from_url(
            self.endpoint,
            maxsize=2,
            block=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=False,
            **tls,
        )
        self._signing_key: tuple[tuple[str, str], bytes] | None = None

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        payload = encode(params).encode()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(operation, payload)
            except (ClientError, EndpointConnectionError, ReadTimeoutError, ChecksumError) as exc:
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def headers(self, operation: str, payload: bytes, now: datetime) -> dict[str, str]:
        """The request's headers, Authorization included (Signature Version 4)."""
        access_key, secret, token = self._credentials()
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": stamp,
            "x-amz-target": f"{self._target}.{operation}",
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
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._key(secret, day), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature.hexdigest()}"
        )
        return headers

    def _attempt(self, operation: str, payload: bytes) -> dict[str, Any]:
        headers = self.headers(operation, payload, self._clock())
        try:
            answer = self.pool.urlopen("POST", "/", body=payload, headers=headers)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=self.endpoint) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise EndpointConnectionError(endpoint_url=self.endpoint) from exc
        crc = answer.headers.get("x-amz-crc32")  # DynamoDB's; botocore retries a mismatch
        if crc is not None and str(zlib.crc32(answer.data)) != crc:
            raise ChecksumError(
                checksum_type="CRC32",
                expected_checksum=crc,
                actual_checksum=str(zlib.crc32(answer.data)),
            )
        data = _json(answer.data)
        if answer.status != 200:
            code = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{answer.status}"
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": str(data.get("message", ""))},
                    "ResponseMetadata": {"HTTPStatusCode": answer.status},
                },
                operation,
            )
        return data

    def _key(self, secret: str, day: str) -> bytes:
        """The day's signing key, derived once a day (four HMACs) rather than per request."""
        if self._signing_key is None or self._signing_key[0] != (secret, day):
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._signing_key = ((secret, day), key)
        return self._signing_key[1]


def _retryable(exc: Exception) -> bool:
    if not isinstance(exc, ClientError):
        return True  # could not connect, no answer in time, or a damaged answer
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or status == 429 or exc.response["Error"]["Code"] in RETRY_CODES


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
