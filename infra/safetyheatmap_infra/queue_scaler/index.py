"""Queue scaler: runs every minute, reads the queue directly, wakes the worker service from zero.

Why this exists (docs/DEPLOY.md, "Scaling the worker from zero"): SQS's own CloudWatch metrics
arrive minutes late, and target tracking takes no action on a service with no tasks. This function
calls GetQueueAttributes (exact-ish counts, no delay) and:

* raises the worker scalable target's *minimum* to 1 as soon as a message waits. Application Auto
  Scaling moves the current capacity into the new range at once, so a task starts within seconds
  of the tick, and an idle scale-in policy that is still in ALARM cannot take it away again;
* lowers the minimum back to 0 once nothing is visible, delayed or in flight, which lets the
  idle alarm (several minutes of zero backlog, visible + in-flight) scale the service to 0;
* publishes QueueVisible, QueueInFlight, QueueDelayed and BacklogPerWorker as CloudWatch
  Embedded Metric Format lines (namespace SafetyHeatmap) for the scale-out and idle alarms.

It never lowers the desired count itself, so it never stops a busy task.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

DIMENSION = "ecs:service:DesiredCount"
NAMESPACE = "SafetyHeatmap"


def decide(
    *, visible: int, in_flight: int, delayed: int, floor: int, desired: int
) -> tuple[int, float]:
    """New minimum capacity of the worker service, and visible messages per (future) worker."""
    waiting = visible + delayed
    new_floor = floor
    if waiting > 0 and floor < 1:
        new_floor = 1
    elif waiting == 0 and in_flight == 0 and floor > 0:
        new_floor = 0
    workers = max(desired, new_floor, 1)
    return new_floor, visible / workers


def emf_line(queue_name: str, counts: dict[str, float], now_ms: int) -> str:
    names = ["QueueVisible", "QueueInFlight", "QueueDelayed", "BacklogPerWorker"]
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["QueueName"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
                }
            ],
        },
        "QueueName": queue_name,
    }
    document.update({name: counts[name] for name in names})
    document.update({k: v for k, v in counts.items() if k not in names})
    return json.dumps(document, separators=(",", ":"))


def _clients() -> tuple[Any, Any, Any]:  # pragma: no cover - boto3 is in the Lambda runtime
    import boto3  # noqa: PLC0415 - only the Lambda runtime has it; tests inject fakes

    return boto3.client("sqs"), boto3.client("application-autoscaling"), boto3.client("ecs")


def handler(event: object, context: object, clients: tuple[Any, Any, Any] | None = None) -> dict:
    sqs, autoscaling, ecs = clients or _clients()
    queue_url = os.environ["QUEUE_URL"]
    queue_name = os.environ["QUEUE_NAME"]
    cluster = os.environ["CLUSTER_NAME"]
    service = os.environ["SERVICE_NAME"]
    resource_id = f"service/{cluster}/{service}"

    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    visible = int(attributes.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
    delayed = int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))

    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource_id], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    if not targets:
        raise RuntimeError(f"no scalable target for {resource_id}")
    floor = int(targets[0]["MinCapacity"])
    services = ecs.describe_services(cluster=cluster, services=[service])["services"]
    desired = int(services[0]["desiredCount"]) if services else 0

    new_floor, per_worker = decide(
        visible=visible, in_flight=in_flight, delayed=delayed, floor=floor, desired=desired
    )
    if new_floor != floor:
        autoscaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension=DIMENSION,
            MinCapacity=new_floor,
        )
    counts = {
        "QueueVisible": visible,
        "QueueInFlight": in_flight,
        "QueueDelayed": delayed,
        "BacklogPerWorker": math.ceil(per_worker * 100) / 100,
        "WorkerFloor": new_floor,
        "WorkerDesired": desired,
    }
    print(emf_line(queue_name, counts, int(time.time() * 1000)))
    return counts
