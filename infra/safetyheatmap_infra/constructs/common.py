"""What the parts share: the Part base class, log groups and the small scheduled functions."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..config import Config
from ..logical_ids import unique_id

WEB_PORT = 8000
METRIC_NAMESPACE = "SafetyHeatmap"


class Part(Construct):
    """One concern of the service stack, created directly under it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.stack = Stack.of(self)

    def flat_name(self, *below: str) -> str:
        """The name CDK generates from the path of this part's construct ``below`` when a
        property is left out (``Names.unique_id``), as it was before the stack had parts: a
        changed name would replace the VPC link and the scaling policies."""
        return unique_id([self.stack.node.id, *below])

    def log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=f"/{self.config.prefix}/{name}",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def small_function(
        self, construct_id: str, log_name: str, code: Path, description: str, env: dict[str, str]
    ) -> lambda_.Function:
        """A scheduled Python function of one file (index.py): arm64, 128 MB, its own log group.
        No reserved concurrency: a new account's whole quota can be 10, and reserving any of it
        fails the deploy. Each runs at most once a minute and finishes within seconds."""
        return lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(code), exclude=["__pycache__", "*.pyc"]),
            memory_size=128,
            timeout=Duration.seconds(20),
            log_group=self.log_group(f"{construct_id}Logs", log_name),
            environment=env,
        )


def retention(days: int) -> logs.RetentionDays:
    days_to_member = {
        1: logs.RetentionDays.ONE_DAY,
        3: logs.RetentionDays.THREE_DAYS,
        5: logs.RetentionDays.FIVE_DAYS,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
    }
    if days not in days_to_member:
        raise ValueError(f"log retention must be one of {sorted(days_to_member)} days, not {days}")
    return days_to_member[days]
