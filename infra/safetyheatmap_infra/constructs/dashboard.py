"""The CloudWatch dashboard: API, web, queue and worker, and every alarm's state."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from ..config import Config
from .alarms import FIVE_MINUTES, Alarms
from .api import Api
from .common import Part
from .data import Data
from .web import Web
from .worker_scaling import WorkerScaling


class Dashboard(Part):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        data: Data,
        api: Api,
        web: Web,
        scaling: WorkerScaling,
        alarms: Alarms,
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        five = FIVE_MINUTES
        http = api.api
        worker_running = cw.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={
                "ClusterName": config.cluster_name,
                "ServiceName": config.worker_service_name,
            },
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.prefix}",
            default_interval=Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    http.metric_count(statistic="Sum", period=five),
                    http.metric_client_error(statistic="Sum", period=five),
                    http.metric_server_error(statistic="Sum", period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="API latency (ms)",
                left=[
                    http.metric_latency(statistic="p50", period=five),
                    http.metric_latency(statistic="p95", period=five),
                    http.metric_integration_latency(statistic="p95", period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Web CPU / memory (%)",
                left=[
                    web.service.metric_cpu_utilization(period=five),
                    web.service.metric_memory_utilization(period=five),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue (scaler, per minute)",
                left=[scaling.metric_visible, scaling.metric_in_flight, scaling.metric_delayed],
                right=[worker_running],
                width=8,
            ),
            cw.GraphWidget(
                title="Oldest message age (s) / DLQ depth",
                left=[
                    data.queue.metric_approximate_age_of_oldest_message(
                        statistic="Maximum", period=five
                    )
                ],
                right=[
                    data.dlq.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=five
                    )
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Worker task failures / scaler errors",
                left=[alarms.metric_task_failed],
                right=[scaling.queue_scaler.metric_errors(statistic="Sum", period=five)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=alarms.all, width=24)
        )
