"""Deployment settings, read from CDK context (infra/cdk.json, or ``-c key=value``).

Every key lives under the ``safetyheatmap:`` prefix, e.g. ``-c safetyheatmap:alarmEmail=ops@x``.
Values given on the command line arrive as strings and are coerced to the field's type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from constructs import Node

CONTEXT_PREFIX = "safetyheatmap:"


@dataclass(frozen=True)
class Config:
    # --- where ------------------------------------------------------------------------------
    account: str = "123456789012"  # placeholder: set yours in cdk.json (see docs/DEPLOY.md)
    region: str = "us-east-1"
    prefix: str = "safetyheatmap"  # names of queues, tables, repositories, cluster, log groups
    base_stack_name: str = "SafetyHeatmapBase"
    app_stack_name: str = "SafetyHeatmap"
    # --- CI/CD (GitHub Actions through OIDC) -------------------------------------------------
    github_repo: str = "example-org/safetyheatmap"  # owner/name allowed to assume the roles
    github_branch: str = "main"
    github_infra_environment: str = "infrastructure"  # GitHub environment with required reviewers
    github_oidc_provider_arn: str = ""  # reuse the account's provider instead of creating one
    cdk_qualifier: str = "hnb659fds"  # CDK bootstrap qualifier (default bootstrap)
    # --- alarms -----------------------------------------------------------------------------
    alarm_email: str = ""  # subscribed to the alarm topic when set
    # --- web --------------------------------------------------------------------------------
    web_cpu: int = 256
    web_memory: int = 512
    web_min_tasks: int = 1
    web_max_tasks: int = 4
    web_workers: int = 1  # SAFETYHEATMAP_WEB_WORKERS (one batcher: bigger SQS messages)
    web_worker_class: str = "gevent"  # SAFETYHEATMAP_WEB_WORKER_CLASS (gthread: the fallback)
    web_threads: int = 64  # SAFETYHEATMAP_WEB_THREADS (gthread only)
    web_spot: bool = False  # True: run the web on FARGATE_SPOT too (cheaper, brief outages)
    api_rate_limit: int = 50  # requests per second, steady state, whole stage
    api_burst_limit: int = 100
    # --- worker -----------------------------------------------------------------------------
    worker_cpu: int = 512
    worker_memory: int = 1024
    worker_max_tasks: int = 4
    worker_concurrency: int = 3  # SAFETYHEATMAP_WORKER_CONCURRENCY (one often recomputes)
    worker_prefetch: int = 4  # SAFETYHEATMAP_WORKER_PREFETCH
    scale_out_backlog_per_worker: int = 20  # visible messages per worker that add a worker
    idle_minutes_before_zero: int = 10  # minutes with no visible and no in-flight message
    # --- queue semantics (must match the app's settings) ------------------------------------
    visibility_timeout: int = 180  # SAFETYHEATMAP_VISIBILITY_TIMEOUT
    max_receives: int = 5  # SAFETYHEATMAP_MAX_RECEIVES
    # --- observability ----------------------------------------------------------------------
    log_retention_days: int = 30
    container_insights: bool = True
    oldest_message_alarm_seconds: int = 900
    latency_alarm_ms: int = 2000
    error_rate_alarm_percent: int = 5

    @property
    def queue_name(self) -> str:
        return f"{self.prefix}-reports"

    @property
    def dlq_name(self) -> str:
        return f"{self.prefix}-reports-dlq"

    @property
    def reports_table_name(self) -> str:
        return f"{self.prefix}-reports"

    @property
    def grids_table_name(self) -> str:
        return f"{self.prefix}-grids"

    @property
    def cluster_name(self) -> str:
        return self.prefix

    @property
    def web_service_name(self) -> str:
        return f"{self.prefix}-web"

    @property
    def worker_service_name(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def web_repository_name(self) -> str:
        return f"{self.prefix}-web"

    @property
    def worker_repository_name(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def role_path(self) -> str:
        """IAM path of the task roles, so CI may pass exactly these roles to ECS."""
        return f"/{self.prefix}/"

    @classmethod
    def from_context(cls, node: Node) -> Config:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = node.try_get_context(CONTEXT_PREFIX + _camel(f.name))
            if raw is None:
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _coerce(kind: Any, raw: Any, name: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"context {CONTEXT_PREFIX}{_camel(name)}: not a boolean: {raw!r}")
    if kind == "int":
        return int(raw)
    return str(raw)
