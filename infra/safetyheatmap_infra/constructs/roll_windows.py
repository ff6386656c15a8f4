"""The hourly roll-windows job, without an always-on beat process.

EventBridge Scheduler invokes the roll gate, which puts the Celery message on the queue only
when a window has reports to drop (roll_gate/index.py); the scaler then wakes a worker if none
runs. Sent blindly, the message would wake a worker every hour of an idle deployment.

The message is the app's own: shared/model/taskmsg.py (stdlib only) builds it here, at synth
time, into the gate's environment (at most 4 KB; the body is ~1 KB), so the Lambda bundles no
copy of it and sends the bytes it is given. The module is loaded from its file rather than
imported, so the infra venv sees that one module and nothing else of the app. A change to it
changes the template; infra/scripts/plan-deploy.sh counts it as an infra change.

The task id is fixed (and so is the delivery tag, which kombu replaces on receipt) because
the template fixes the bytes; the task is idempotent per window anyway, and SQS may redeliver.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from ..config import Config
from .common import Part
from .data import Data

ROLL_GATE_CODE = Path(__file__).parents[1] / "roll_gate"
TASKMSG = Path(__file__).resolve().parents[3] / "shared" / "model" / "taskmsg.py"
# A fixed, recognisable id: the body is built once, at synth time.
ROLL_WINDOWS_TASK_ID = "5afe7ea7-0000-4000-8000-0000000000a1"
SCHEDULER_ORIGIN = "eventbridge-scheduler"


def taskmsg() -> ModuleType:
    """The app's shared/model/taskmsg.py, loaded from its file."""
    spec = importlib.util.spec_from_file_location("safetyheatmap_taskmsg", TASKMSG)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"the app's task message module is missing: {TASKMSG}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def roll_windows_body(queue_name: str) -> str:
    """SQS MessageBody of the hourly ``safetyheatmap.roll_windows`` message (no arguments)."""
    messages = taskmsg()
    return str(
        messages.celery_body(
            messages.ROLL_WINDOWS,
            [],
            queue_name,
            task_id=ROLL_WINDOWS_TASK_ID,
            delivery_tag=ROLL_WINDOWS_TASK_ID,
            headers={"origin": SCHEDULER_ORIGIN},
        )
    )


class RollWindows(Part):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, data: Data) -> None:
        super().__init__(scope, construct_id, config=config)
        self.gate = self.small_function(
            "RollGate",
            "roll-gate",
            ROLL_GATE_CODE,
            "Hourly: enqueue roll_windows only when a window has reports to drop",
            {
                "REPORTS_TABLE": data.reports_table.table_name,
                "GRIDS_TABLE": data.grids_table.table_name,
                "QUEUE_URL": data.queue.queue_url,
                "ROLL_BODY": roll_windows_body(config.queue_name),
            },
        )
        role = self.gate.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadReportDaysAndMarks",
                actions=["dynamodb:Query"],
                resources=[data.reports_table.table_arn, data.grids_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EnqueueRoll", actions=["sqs:SendMessage"], resources=[data.queue.queue_arn]
            )
        )
        scheduler.Schedule(
            self,
            "RollWindowsHourly",
            description="Every hour: the roll gate enqueues safetyheatmap.roll_windows if due",
            schedule=scheduler.ScheduleExpression.cron(minute="0", hour="*"),
            target=scheduler_targets.LambdaInvoke(
                self.gate, retry_attempts=3, max_event_age=Duration.minutes(30)
            ),
        )
