"""Small factories for AWS clients; nothing here runs at import time.

With ``SAFETYHEATMAP_AWS_ENDPOINT_URL`` set, every client talks to that endpoint (moto server
locally and in tests) with placeholder credentials; without it boto3 resolves endpoint and
credentials itself (the ECS task role in production).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import NoCredentialsError
from botocore.loaders import Loader, create_loader

from shared.config.settings import Settings

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
    return _session().client(service, **kwargs)


@functools.cache
def _data_loader() -> Loader:
    """One per process: botocore's loader caches the JSON it reads (the endpoint rules and the
    service models), ~0.25 s of parsing for every new session, most of a client's creation."""
    return create_loader()


def _session() -> boto3.session.Session:
    """A session per client, as boto3 advises for threads, sharing the process's loader."""
    core = botocore.session.Session()
    core.register_component("data_loader", _data_loader())
    session = boto3.session.Session(botocore_session=core)
    paths = _data_loader().search_paths  # boto3 appends its own data path for each session
    paths[:] = list(dict.fromkeys(paths))
    return session


Credentials = Callable[[], tuple[str, str, str | None]]


def credentials(settings: Settings) -> Credentials:
    """The access key, secret and session token to sign a request with, current on each
    call (the ECS task role's rotate; botocore refreshes them before they expire)."""
    if settings.endpoint_url:
        fixed = (
            EMULATOR_CREDENTIALS["aws_access_key_id"],
            EMULATOR_CREDENTIALS["aws_secret_access_key"],
            None,
        )
        return lambda: fixed
    session = _session()

    def current() -> tuple[str, str, str | None]:
        found = session.get_credentials()
        if found is None:
            raise NoCredentialsError()
        frozen = found.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    return current


def broker_url(settings: Settings) -> str:
    """kombu has no endpoint option: the emulator's host and port go in the broker URL."""
    if not settings.endpoint_url:
        return "sqs://"
    parts = urlsplit(settings.endpoint_url)
    user = EMULATOR_CREDENTIALS["aws_access_key_id"]
    secret = EMULATOR_CREDENTIALS["aws_secret_access_key"]
    return f"sqs://{user}:{secret}@{parts.hostname}:{parts.port or 80}"
