"""SQS SendMessage as one signed HTTP POST: the acknowledgement path's only call to AWS.

boto3's client spent 1.13 ms of CPU on a SendMessage of 25 reports, web/awsjson.py 0.72 ms
(bench/send_cost.py, calls), and the web process's CPU is what its latency tail waits for. The
answer's MD5 of the body is checked, as botocore checks it. Everything else the web asks of SQS
(the queue's URL, readiness) still goes through boto3.
"""

from __future__ import annotations

import hashlib

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
    ) -> None:
        self.api = AwsJson(endpoint_url, region, "sqs", "AmazonSQS", credentials, timeout_s)

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
