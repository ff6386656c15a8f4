"""AWS JSON-protocol calls as one signed HTTP POST each: the web's calls on its hot paths.

A boto3 client call spends ~1.1-1.5 ms of CPU (its event hooks, models, serializer and parser),
where the request is a JSON body, two headers and a Signature Version 4. The web makes two calls
often enough for that to count: SendMessage for every batch of reports (web/sqs_send.py) and a
GetItem of the `tiles-written` item every ``GRID_CHECK_S`` while reads come (web/beacon.py).
This posts the same request, signed by botocore's own signer (``SigV4Auth``, with the
credentials current at each call), for about half a client call's CPU (bench/send_cost.py,
calls: SendMessage of 25 reports 0.72 against 1.13 ms, GetItem 0.53 against 1.13 ms). A
hand-written signer would save 0.11 ms a message (0.02 against 0.13 ms), 2-4 % of the web's CPU
per report on the whole acknowledgement path, under the 10 % that would pay for owning
signing code (bench/send_cost.py, ack: 2.3 % with one report a message at 200/s). It fails the
way botocore does: :class:`ClientError` with the error code for an error answer,
:class:`EndpointConnectionError` or :class:`ReadTimeoutError` when the service cannot be reached
or does not answer, and one retry for those, for throttling and 5xx answers and for a DynamoDB
answer whose CRC32 does not match (botocore's standard mode with two attempts). Every other call
still goes through boto3.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
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
    ) -> None:
        self.endpoint = endpoint_url.rstrip("/")
        self._url = f"{self.endpoint}/"
        self._region = region
        self._service = service
        self._target = target
        self._credentials = credentials
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

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        payload = encode(params).encode()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(operation, payload)
            except (ClientError, EndpointConnectionError, ReadTimeoutError, ChecksumError) as exc:
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def headers(self, operation: str, payload: bytes) -> dict[str, str]:
        """The request's headers, signed by botocore (Signature Version 4) with the
        credentials current now."""
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=payload,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{self._target}.{operation}"},
        )
        SigV4Auth(ReadOnlyCredentials(*self._credentials()), self._service, self._region).add_auth(
            request
        )
        return dict(request.headers.items())

    def _attempt(self, operation: str, payload: bytes) -> dict[str, Any]:
        headers = self.headers(operation, payload)
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
