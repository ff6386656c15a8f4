"""Create the queue, its dead-letter queue and the tables: the emulator's (and compose's) init.

In AWS the CDK stack owns these resources; this mirrors their shape so local runs behave the
same (redrive after N receives, the visibility timeout, on-demand tables with pk/sk keys).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shared.config.settings import Settings
from shared.store import aws


def provision(settings: Settings) -> dict[str, str]:
    sqs = aws.client(settings, "sqs")
    ddb = aws.client(settings, "dynamodb")
    dlq_url = sqs.create_queue(
        QueueName=settings.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(settings.visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": str(settings.wait_time_seconds),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.max_receives)}
        ),
    }
    try:
        queue_url = sqs.create_queue(QueueName=settings.queue_name, Attributes=attributes)[
            "QueueUrl"
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        queue_url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    for table in (settings.reports_table, settings.grids_table):
        ensure_table(ddb, table)
    return {"queue_url": queue_url, "dlq_url": dlq_url}


def ensure_table(ddb: Any, name: str) -> None:
    try:
        ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
