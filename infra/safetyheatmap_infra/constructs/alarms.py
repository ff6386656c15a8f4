"""The alarms (docs/OPERATIONS.md has a runbook section per alarm) and their SNS topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ..config import Config
from .api import Api
from .common import METRIC_NAMESPACE, Part
from .data import Data
from .roll_windows import RollWindows
from .worker_scaling import WorkerScaling

FIVE_MINUTES = Duration.minutes(5)


class Alarms(Part):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        data: Data,
        api: Api,
        scaling: WorkerScaling,
        roll_windows: RollWindows,
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{config.prefix}-alarms",
            enforce_ssl=True,
            display_name="SafetyHeatmap alarms",
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._notify = cw_actions.SnsAction(self.topic)
        five = FIVE_MINUTES
        self.dlq = self._alarm(
            "DlqNotEmpty",
            alarm_description="Messages reached the dead-letter queue (a task failed N times)",
            metric=data.dlq.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=five
            ),
            threshold=1,
            evaluation_periods=1,
        )
        self.oldest = self._alarm(
            "OldestMessageAge",
            alarm_description="A message has waited too long: workers not keeping up or down",
            metric=data.queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=five
            ),
            threshold=config.oldest_message_alarm_seconds,
            evaluation_periods=1,
        )
        errors = api.api.metric_server_error(statistic="Sum", period=five)
        count = api.api.metric_count(statistic="Sum", period=five)
        self.api_5xx = self._alarm(
            "Api5xxRate",
            alarm_description="More than N% of API answers are 5xx (at least 20 requests)",
            metric=cw.MathExpression(
                expression="IF(requests >= 20, 100 * errors / requests, 0)",
                using_metrics={"errors": errors, "requests": count},
                period=five,
                label="5xx %",
            ),
            threshold=config.error_rate_alarm_percent,
            evaluation_periods=2,
            datapoints_to_alarm=2,
        )
        self.latency = self._alarm(
            "ApiLatencyP95",
            alarm_description="API p95 latency above the budget for 15 minutes",
            metric=api.api.metric_latency(statistic="p95", period=five),
            threshold=config.latency_alarm_ms,
            evaluation_periods=3,
            datapoints_to_alarm=3,
        )
        self.metric_task_failed = cw.Metric(
            namespace=METRIC_NAMESPACE, metric_name="TaskFailed", statistic="Sum", period=five
        )
        self.worker_errors = self._alarm(
            "WorkerTaskErrors",
            alarm_description="Worker tasks failing (EMF metric TaskFailed from the workers)",
            metric=self.metric_task_failed,
            threshold=5,
            evaluation_periods=1,
        )
        self.scaler = self._alarm(
            "QueueScalerFailing",
            alarm_description="The queue scaler errors or stopped reporting: workers won't wake",
            metric=cw.MathExpression(
                expression="IF(FILL(ticks, 0) < 1 OR FILL(errors, 0) > 0, 1, 0)",
                using_metrics={
                    "ticks": scaling.metric_visible.with_(statistic="SampleCount", period=five),
                    "errors": scaling.queue_scaler.metric_errors(statistic="Sum", period=five),
                },
                period=five,
                label="scaler broken",
            ),
            threshold=1,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        self.roll_gate = self._alarm(
            "RollGateFailing",
            alarm_description="The hourly roll gate failed: time-window heatmaps may not age",
            metric=roll_windows.gate.metric_errors(statistic="Sum", period=Duration.hours(1)),
            threshold=1,
            evaluation_periods=1,
        )
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)

    @property
    def all(self) -> list[cw.Alarm]:
        return [
            self.dlq,
            self.oldest,
            self.api_5xx,
            self.latency,
            self.worker_errors,
            self.scaler,
            self.roll_gate,
        ]

    def _alarm(self, construct_id: str, **kwargs: Any) -> cw.Alarm:
        """An alarm at or above its threshold, notifying on alarm and on OK; no data is fine
        unless said otherwise.

        Named `<prefix>-<Id>`, as docs/OPERATIONS.md's runbook headings and the notifications
        say, not CloudFormation's `<stack>-<Id><hash>`."""
        kwargs.setdefault(
            "comparison_operator", cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        )
        kwargs.setdefault("treat_missing_data", cw.TreatMissingData.NOT_BREACHING)
        created = cw.Alarm(
            self, construct_id, alarm_name=f"{self.config.prefix}-{construct_id}", **kwargs
        )
        created.add_alarm_action(self._notify)
        created.add_ok_action(self._notify)
        return created
