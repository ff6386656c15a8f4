"""Scale the worker between 0 and N on fresh queue counts; see docs/DEPLOY.md.

The queue scaler (a Lambda, every minute) reads the queue with GetQueueAttributes, which has no
CloudWatch delay, raises the scalable target's minimum to 1 when a message waits and publishes
the counts (EMF); step scaling adds workers on backlog and returns them to zero when idle.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from ..config import Config
from .common import METRIC_NAMESPACE, Part
from .data import Data
from .worker import Worker

QUEUE_SCALER_CODE = Path(__file__).parents[1] / "queue_scaler"


class WorkerScaling(Part):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, data: Data, worker: Worker
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        stack = self.stack
        resource_id = f"service/{config.cluster_name}/{config.worker_service_name}"
        self.target = appscaling.ScalableTarget(
            self,
            "WorkerScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=resource_id,
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=0,
            max_capacity=config.worker_max_tasks,
            # The service-linked role, as ECS's own auto_scale_task_count uses.
            role=iam.Role.from_role_arn(
                self,
                "EcsAutoScalingRole",
                f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
                "ecs.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_ECSService",
            ),
        )
        self.target.node.add_dependency(worker.service)
        self._queue_scaler(data, worker)
        self._metrics()
        self._step_scaling()

    def _queue_scaler(self, data: Data, worker: Worker) -> None:
        config = self.config
        stack = self.stack
        self.queue_scaler = self.small_function(
            "QueueScaler",
            "queue-scaler",
            QUEUE_SCALER_CODE,
            "Wakes the worker service from zero; publishes queue counts (EMF)",
            {
                "QUEUE_URL": data.queue.queue_url,
                "QUEUE_NAME": data.queue.queue_name,
                "CLUSTER_NAME": config.cluster_name,
                "SERVICE_NAME": config.worker_service_name,
            },
        )
        role = self.queue_scaler.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadQueueDepth",
                actions=["sqs:GetQueueAttributes"],
                resources=[data.queue.queue_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WorkerServiceForAutoScaling",
                # Application Auto Scaling calls these as the caller when a target is updated.
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=[worker.service.service_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeScalableTargets",
                # Reason: WILDCARD_REASONS (Describe* has no resource-level scope).
                actions=["application-autoscaling:DescribeScalableTargets"],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MoveWorkerFloor",
                # Target ARNs carry an id minted at registration: pattern + conditions.
                actions=["application-autoscaling:RegisterScalableTarget"],
                resources=[
                    f"arn:{stack.partition}:application-autoscaling:{stack.region}:"
                    f"{stack.account}:scalable-target/*"
                ],
                conditions={
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "ecs",
                        "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
                    }
                },
            )
        )
        scheduler.Schedule(
            self,
            "QueueScalerTick",
            description="Every minute: read the queue, wake or release the worker service",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(1)),
            target=scheduler_targets.LambdaInvoke(
                self.queue_scaler, retry_attempts=0, max_event_age=Duration.minutes(1)
            ),
        )

    def _metrics(self) -> None:
        """The scaler's counts, per minute."""

        def queue_metric(name: str) -> cw.Metric:
            return cw.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=name,
                dimensions_map={"QueueName": self.config.queue_name},
                statistic="Maximum",
                period=Duration.minutes(1),
            )

        self.metric_visible = queue_metric("QueueVisible")
        self.metric_in_flight = queue_metric("QueueInFlight")
        self.metric_delayed = queue_metric("QueueDelayed")
        self.metric_backlog_per_worker = queue_metric("BacklogPerWorker")

    def _step_scaling(self) -> None:
        config = self.config
        # Scale out: one more worker per minute while the backlog per worker stays high.
        # >= (not >) so that the threshold itself counts.
        scale_out = appscaling.StepScalingAction(
            self,
            "WorkerScaleOut",
            policy_name=self.flat_name("WorkerScaleOut"),
            scaling_target=self.target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.minutes(2),
        )
        threshold = config.scale_out_backlog_per_worker
        scale_out.add_adjustment(adjustment=1, lower_bound=0, upper_bound=threshold * 4)
        scale_out.add_adjustment(adjustment=2, lower_bound=threshold * 4)
        self.scale_out_alarm = cw.Alarm(
            self,
            "WorkerBacklogHigh",
            alarm_name=f"{config.prefix}-WorkerBacklogHigh",
            alarm_description="Visible messages per worker above target: add workers",
            metric=self.metric_backlog_per_worker,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.scale_out_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_out))

        # Scale to zero: only after N minutes in which nothing was visible, delayed or in
        # flight. Never on CPU (idle CPU is no proof of idleness) nor on visible alone.
        scale_to_zero = appscaling.StepScalingAction(
            self,
            "WorkerScaleToZero",
            policy_name=self.flat_name("WorkerScaleToZero"),
            scaling_target=self.target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.minutes(1),
        )
        scale_to_zero.add_adjustment(adjustment=0, upper_bound=0)
        idle_minutes = config.idle_minutes_before_zero
        self.idle_alarm = cw.Alarm(
            self,
            "WorkerIdle",
            alarm_name=f"{config.prefix}-WorkerIdle",
            alarm_description=(
                f"No visible, delayed or in-flight message for {idle_minutes} minutes: "
                "scale the workers to zero"
            ),
            metric=cw.MathExpression(
                expression="visible + inflight + delayed",
                using_metrics={
                    "visible": self.metric_visible,
                    "inflight": self.metric_in_flight,
                    "delayed": self.metric_delayed,
                },
                period=Duration.minutes(1),
                label="Backlog incl. in flight",
            ),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=idle_minutes,
            datapoints_to_alarm=idle_minutes,
            # No data (scaler broken) is not proof of idleness: keep the workers.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.idle_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_to_zero))
