"""Build the real collaborators from settings; the only place web code touches boto3."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.obs.status import StatusReader
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.keys import TILES_WRITTEN
from web import beacon
from web.app import create_app
from web.enqueue import SqsEnqueuer
from web.grids import BlobCache, GridReader
from web.ratelimit import from_settings as rate_limiter
from web.replay import WsgiApp
from web.sqs_send import SendMessage


def build_app(settings: Settings) -> WsgiApp:
    sqs = aws.client(settings, "sqs", timeout=settings.enqueue_timeout, attempts=2)
    ddb = aws.client(settings, "dynamodb", timeout=3.0, attempts=3)
    credentials = aws.credentials(settings)  # for the two calls made without boto3
    enqueue = SqsEnqueuer(
        sqs,
        settings.queue_name,
        send=SendMessage(
            sqs.meta.endpoint_url,
            sqs.meta.region_name,
            credentials,
            settings.enqueue_timeout,
        ),
        batch_size=settings.enqueue_batch_size,
        timeout_s=settings.enqueue_timeout,
    )
    grids = GridRepository(ddb, settings.grids_table)
    cache = BlobCache(
        grids,
        settings.grid_cache_ttl,
        settings.grid_cache_size,
        # Ten looks a second while reads come, without boto3 (web/beacon.py).
        beacon=beacon.for_client(ddb, credentials, settings.grids_table, TILES_WRITTEN)
        if settings.grid_check_s > 0
        else None,
        check_every=settings.grid_check_s,
    )
    reader = GridReader(cache, Pyramid(settings.bandwidth_m, settings.max_zoom))

    def tables() -> None:
        for table in (settings.reports_table, settings.grids_table):
            ddb.describe_table(TableName=table)

    return create_app(
        settings,
        enqueue=enqueue,
        reader=reader,
        ready_checks={"queue": enqueue.ping, "tables": tables},
        clock=lambda: datetime.now(UTC),
        limiter=rate_limiter(settings),
        status=StatusReader(sqs, ddb, settings, cache_ttl=settings.status_cache_ttl),
        summary=grids.get_summary,
    )
