"""The acknowledgement path's only I/O: put one report on the queue, or say why not.

A report is acknowledged only after SQS has accepted its message, so every failure here must
surface as :class:`QueueUnavailable` (a 503 with Retry-After) and never as a 202.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.report import Report
from shared.taskmsg import STORE_REPORT, celery_body

SQS_MESSAGE_LIMIT = 256 * 1024


class QueueUnavailable(Exception):
    """SQS did not accept the message; the client should retry later."""


class SqsEnqueuer:
    def __init__(self, sqs: Any, queue_name: str) -> None:
        self._sqs = sqs
        self._queue_name = queue_name
        self._url: str | None = None
        self._lock = threading.Lock()

    def __call__(self, report: Report, request_id: str) -> None:
        body = celery_body(
            STORE_REPORT,
            [report.to_message()],
            self._queue_name,
            headers={"request_id": request_id},
        )
        if len(body) > SQS_MESSAGE_LIMIT:  # pragma: no cover - the body limit keeps us far below
            raise QueueUnavailable("message too large")
        try:
            self._sqs.send_message(QueueUrl=self._queue_url(), MessageBody=body)
        except (BotoCoreError, ClientError) as exc:
            self._url = None  # the queue may have been re-created; resolve again next time
            raise QueueUnavailable(type(exc).__name__) from exc

    def ping(self) -> None:
        """Readiness: the queue exists and answers."""
        try:
            self._sqs.get_queue_attributes(QueueUrl=self._queue_url(), AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            self._url = None
            raise QueueUnavailable(type(exc).__name__) from exc

    def _queue_url(self) -> str:
        if self._url is None:
            with self._lock:
                if self._url is None:
                    self._url = self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._url
