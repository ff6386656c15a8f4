"""SQS SendMessage as one signed HTTP POST: the acknowledgement path's only call to AWS.

At 1,000 reports/s botocore's ~3 ms of CPU per SendMessage was a sixth of the web process's
CPU, and the process's CPU is what its latency tail waits for; web/awsjson.py sends the same
request for ~1.2 ms and fails as botocore does. The answer's MD5 of the body is checked, as
botocore checks it. Everything else the web asks of SQS (the queue's URL, readiness) still goes
through boto3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from botocore.exceptions import ChecksumError

from shared.store.aws import Credentials
from web.awsjson import AwsJson


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
        self.api = AwsJson(endpoint_url, region, "sqs", "AmazonSQS", credentials, timeout_s, clock)

    def __call__(self, queue_url: str, body: str) -> str:
        data = self.api.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": body})
        expected = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        if data.get("MD5OfMessageBody") != expected:
            raise ChecksumError(
                checksum_type="MD5",
                expected_checksum=expected,
                actual_checksum=str(data.get("MD5OfMessageBody")),
            )
        return str(data["MessageId"])
