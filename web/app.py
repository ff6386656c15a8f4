"""The Falcon application factory: collaborators come in, nothing is built from globals."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.pseudonym import Pseudonyms
from web import errors
from web.grids import GridReader, RecentAnswers
from web.middleware import CacheHeaders, RequestId, RequestIds, RequestLog, SecurityHeaders
from web.openapi import OPENAPI_PATH, build_document
from web.ratelimit import Buckets, ClientAddress, RateLimit
from web.replay import Replay
from web.resources.export import ExportResource
from web.resources.health import HealthResource, ReadyResource
from web.resources.heatmap import HeatmapResource, TileResource
from web.resources.meta import CategoriesResource, ConfigResource, SummaryResource
from web.resources.openapi import OpenApiResource
from web.resources.reports import Enqueue, ReportResource
from web.resources.status import StatusResource
from web.static import StaticFiles

API = "/api/safetyheatmap"
REPO_ROOT = Path(__file__).resolve().parent.parent


def create_app(
    settings: Settings,
    enqueue: Enqueue,
    reader: GridReader,
    ready_checks: dict[str, Callable[[], None]],
    clock: Callable[[], datetime],
    limiter: Buckets | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
    recent: RecentAnswers | None = None,
    pseudonyms: Callable[[str], str] | None = None,
    summary: Callable[[], str | None] | None = None,
) -> Replay:
    """``limiter``: the process's token buckets for report submissions; None: no limit.
    ``recent``: the last answers to heatmap reads, kept for ``GRID_CACHE_TTL`` by default.
    ``pseudonyms``: client key -> submitter pseudonym; default keyed by ``CLIENT_HASH_KEY``,
    else the limiter's key (the host's, ``web.hostkey``), else a random key of this process."""
    ids = RequestIds()
    middleware: list[Any] = [
        RequestLog(),
        RequestId(ids),
        SecurityHeaders(),
        CacheHeaders(settings),
    ]
    if settings.cors_origins:
        middleware.append(falcon.CORSMiddleware(allow_origins=list(settings.cors_origins)))
    client = ClientAddress(settings.trusted_proxies)
    if pseudonyms is None:
        secret = settings.client_hash_key.encode() or (
            limiter.secret if limiter is not None else secrets.token_bytes(32)
        )
        pseudonyms = Pseudonyms(secret, settings.privacy_pseudonym_rotation_s)
    if limiter is not None:
        middleware.append(RateLimit(limiter, client, {("POST", f"{API}/report/add")}))
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.secure_cookies_by_default = True
    errors.install(app, settings.retry_after)

    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    named = pseudonyms

    def submitter(req: falcon.Request) -> str:
        return named(client(req))

    app.add_route(
        f"{API}/report/add",
        ReportResource(enqueue, clock, settings.max_body_bytes, submitter),
    )
    app.add_route(f"{API}/categories", CategoriesResource())
    app.add_route(f"{API}/config", ConfigResource(settings))
    # Where the page opens (the worker's summary); without a store, the world view.
    app.add_route(f"{API}/summary", SummaryResource(summary or (lambda: None)))
    # Answers repeat within the grid cache's TTL (many viewers of one city): serve them as is.
    recent = recent or RecentAnswers(settings.grid_cache_ttl, current=reader.current)
    app.add_route(
        f"{API}/heatmap/get",
        HeatmapResource(reader, pyramid, settings.max_grid_cells, recent),
    )
    app.add_route(
        f"{API}/heatmap/tiles/{{z:int}}/{{x:int}}/{{y}}.png", TileResource(reader, pyramid, recent)
    )
    app.add_route(
        f"{API}/heatmap/export",
        ExportResource(
            reader,
            pyramid,
            settings.max_grid_cells,
            recent,
            settings.privacy_min_reports,
            settings.data_licence,
        ),
    )
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready_checks))
    if status is not None:  # queue depth, freshness: see shared/obs/status.py
        app.add_route(f"{API}/status", StatusResource(status))
    document = build_document(settings, status=status is not None)
    app.add_route(OPENAPI_PATH, OpenApiResource(document))
    frontend = Path(settings.frontend_dir) if settings.frontend_dir else REPO_ROOT / "frontend_dist"
    app.add_sink(StaticFiles(frontend), prefix=r"/(?!api/)")
    return Replay(app, recent, ids)
