"""Small factories for AWS clients; nothing here runs at import time.

With ``SAFETYHEATMAP_AWS_ENDPOINT_URL`` set, every client talks to that endpoint (moto server
locally and in tests) with placeholder credentials; without it boto3 resolves endpoint and
credentials itself (the ECS task role in production).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from shared.settings import Settings

EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client(settings: Settings, service: str, *, timeout: float = 5.0, attempts: int = 3) -> Any:
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=timeout,
        read_timeout=max(timeout, settings.wait_time_seconds + 5.0),
        retries={"max_attempts": attempts, "mode": "standard"},
        max_pool_connections=32,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        kwargs.update(EMULATOR_CREDENTIALS)
    return boto3.session.Session().client(service, **kwargs)


def broker_url(settings: Settings) -> str:
    """kombu has no endpoint option: the emulator's host and port go in the broker URL."""
    if not settings.endpoint_url:
        return "sqs://"
    parts = urlsplit(settings.endpoint_url)
    user = EMULATOR_CREDENTIALS["aws_access_key_id"]
    secret = EMULATOR_CREDENTIALS["aws_secret_access_key"]
    return f"sqs://{user}:{secret}@{parts.hostname}:{parts.port or 80}"
