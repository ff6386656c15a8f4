"""One settings object, read from the environment once.

Every tunable of the web service, the workers and the ops tools lives here so that production
differs from the embedded default only by environment variables (prefix ``SAFETYHEATMAP_``).
Handlers and tasks receive a :class:`Settings`; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from shared.geo.privacy import Rule

PREFIX = "SAFETYHEATMAP_"


class SettingsError(ValueError):
    """A variable is present but cannot be coerced; fail at start-up, not at first use."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _parse_tuple(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    # --- network -------------------------------------------------------------------------
    host: str = _setting("127.0.0.1", "Address gunicorn binds to (0.0.0.0 in containers).")
    port: int = _setting(8000, "Port of the web service.")
    web_workers: int = _setting(
        1,
        "Gunicorn worker processes. One: all reports share one batcher, so messages carry more "
        "reports, and one process holds the rate limiter's buckets (per process).",
    )
    web_worker_class: str = _setting(
        "gevent",
        "Gunicorn worker class: gevent (one event loop a process; a submission waiting for its "
        "batch costs a greenlet), gevent_pywsgi (the same loop with gevent's HTTP server: "
        "less CPU a request, see docs/BENCHMARKS.md) or gthread (threads; the fallback).",
    )
    web_connections: int = _setting(
        1000, "Concurrent connections per gunicorn worker process (gevent)."
    )
    web_threads: int = _setting(
        64,
        "Threads per gunicorn worker (gthread only); a submission holds one while its batch is "
        "sent.",
    )
    web_timeout: int = _setting(30, "Gunicorn worker timeout in seconds.")
    web_keepalive: int = _setting(
        5,
        "Seconds an idle keep-alive connection waits for its next request before the web "
        "closes it (a graceful stop waits for open connections, idle or not).",
    )
    graceful_timeout: int = _setting(20, "Seconds gunicorn lets in-flight requests finish.")
    # --- AWS -----------------------------------------------------------------------------
    aws_region: str = _setting("us-east-1", "AWS region of the queue and tables.")
    aws_endpoint_url: str = _setting(
        "", "Endpoint override (the emulator). Empty: boto3 talks to AWS itself."
    )
    queue_name: str = _setting("safetyheatmap-reports", "SQS queue the web enqueues to.")
    dlq_name: str = _setting("safetyheatmap-reports-dlq", "Dead-letter queue of that queue.")
    reports_table: str = _setting("safetyheatmap-reports", "DynamoDB table of stored reports.")
    grids_table: str = _setting("safetyheatmap-grids", "DynamoDB table of grids and markers.")
    # --- queue semantics -----------------------------------------------------------------
    visibility_timeout: int = _setting(
        180, "SQS visibility timeout (s); longer than the longest task including retries."
    )
    max_receives: int = _setting(5, "Receives before SQS moves a message to the DLQ.")
    wait_time_seconds: int = _setting(10, "SQS long-poll wait (s); 10-20 is cheapest idle.")
    enqueue_timeout: float = _setting(3.0, "Seconds the web waits for SQS before a 503.")
    # --- worker --------------------------------------------------------------------------
    worker_concurrency: int = _setting(
        3,
        "Celery worker processes: a recompute run holds one for seconds under load; the others "
        "store reports meanwhile.",
    )
    worker_prefetch: int = _setting(4, "Messages a worker process reserves ahead.")
    store_batch_messages: int = _setting(
        10,
        "Report messages a worker stores in one pass at most (one claim, report write, mark "
        "write and recompute flag for them all); the worker reserves this many messages on top "
        "of WORKER_PREFETCH x WORKER_CONCURRENCY.",
    )
    store_batch_linger_s: float = _setting(
        0.05,
        "Seconds a received report message waits at most for others to share its pass.",
    )
    task_soft_time_limit: int = _setting(
        60,
        "Soft time limit of one task run (s). A recompute run works through the dirty marks for "
        "two thirds of it, then hands on to a fresh run.",
    )
    task_time_limit: int = _setting(
        75, "Hard time limit of one task run (s); a recompute lease lasts this + 5 s."
    )
    task_max_retries: int = _setting(3, "Explicit retries of a failing task.")
    retry_backoff_max: int = _setting(20, "Largest retry countdown (s).")
    recompute_delay: float = _setting(
        0.3, "Seconds a recompute waits so that a burst of reports coalesces."
    )
    point_cache_reports: int = _setting(
        200_000,
        "Reports a worker process keeps in memory from one recompute run to its next (~320 "
        "bytes each), so a run does not read every partition again; 0 keeps none.",
    )
    overview_zoom: int = _setting(
        8,
        "Zooms up to this one (regions, countries) are overviews: under load they are refreshed "
        "in the background pass, not by every run.",
    )
    background_refresh_s: float = _setting(
        60.0,
        "Under steady load, least seconds between background passes (category layers and "
        "overview zooms; the `all` layers at finer zooms are refreshed by every run). A quiet "
        "system runs the pass at once; 0 refreshes everything on every run.",
    )
    # --- density model -------------------------------------------------------------------
    bandwidth_m: float = _setting(200.0, "Kernel standard deviation on the ground (m).")
    max_zoom: int = _setting(16, "Finest zoom served.")
    privacy_min_reports: int = _setting(
        3,
        "k: a cell shows a value only where at least this many distinct submitters have a "
        "report within PRIVACY_RADIUS_FACTOR bandwidths of it (and every slice difference "
        "passes the same test; docs/ARCHITECTURE.md, Privacy).",
    )
    privacy_radius_factor: float = _setting(
        2.0,
        "The privacy rule's circle: this many times the zoom's effective bandwidth, on the ground.",
    )
    privacy_distinct_submitters: bool = _setting(
        True,
        "Count a submitter's reports once towards PRIVACY_MIN_REPORTS: only the first report of "
        "each daily pseudonym counts (`make run` sets false unless set: all its reports come from "
        "one address).",
    )
    privacy_pseudonym_rotation_s: int = _setting(
        86400,
        "How long one pseudonym (a keyed hash of the client address, CLIENT_HASH_KEY) lasts; "
        "periods start at multiples of this since the Unix epoch (UTC midnights by default).",
    )
    max_grid_cells: int = _setting(512 * 512, "Cap on width x height of one heatmap/get answer.")
    # --- web behaviour -------------------------------------------------------------------
    max_body_bytes: int = _setting(8192, "Largest accepted request body (bytes).")
    cache_max_age: int = _setting(5, "Cache-Control max-age (s) of heatmap answers.")
    static_max_age: int = _setting(300, "Cache-Control max-age (s) of the static frontend.")
    grid_cache_ttl: float = _setting(
        2.0, "Seconds a grid stays in the in-process cache at most (see GRID_CHECK_S)."
    )
    grid_check_s: float = _setting(
        0.1,
        "How often (s, at most) the web asks whether any grid was rewritten, while requests "
        "come; a change expires its whole cache. 0: rely on GRID_CACHE_TTL alone.",
    )
    grid_cache_size: int = _setting(2048, "Grids kept in the in-process cache.")
    retry_after: int = _setting(5, "Retry-After (s) sent with a 503.")
    frontend_dir: str = _setting("", "Static frontend folder; empty: the repo's frontend_dist.")
    data_licence: str = _setting(
        "ODbL-1.0", "The licence (SPDX id) stated in every heatmap/export file's metadata."
    )
    cors_origins: tuple[str, ...] = _setting((), "Origins allowed by CORS (comma-separated).")
    base_tiles_url: str = _setting(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "Base-map tile URL the page uses."
    )
    base_tiles_attribution: str = _setting(
        "© OpenStreetMap contributors", "Attribution shown for the base map."
    )
    log_level: str = _setting("INFO", "Log level of web and workers.")
    # --- abuse -------------------------------------------------------------------------
    rate_limit_per_minute: int = _setting(
        30,
        "Report submissions (POST report/add) one client may make per minute, refilled "
        "continuously (token bucket); 0 turns the limit off (load tests). Reads are not limited.",
    )
    rate_limit_burst: int = _setting(
        10, "Submissions a client may make at once before the per-minute rate applies."
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "CIDRs of proxies (API Gateway's VPC link) whose X-Forwarded-For is believed; the client "
        "is the right-most hop not in these. Empty: the TCP peer is the client.",
    )
    client_hash_key: str = _setting(
        "",
        "Secret key of the HMAC that turns a client address into its rate-limit key and its "
        "daily submitter pseudonym. Empty: the gunicorn master makes a random key at start, "
        "shared by its workers (set one key for all hosts so pseudonyms agree across them).",
    )
    # --- acknowledgement batching ----------------------------------------------------------
    enqueue_batch_size: int = _setting(
        50,
        "Reports the web puts in one SQS message at most; concurrent POSTs of one process share "
        "a message (1: one message per report).",
    )
    # --- operations ----------------------------------------------------------------------
    emulator_fixes: bool = _setting(
        True,
        "Local stack only: run moto under gunicorn (shared/dev/emulator.py: keep-alive, gevent) "
        "with "
        "its SQS and DynamoDB hot spots made to cost what AWS's do (shared/dev/motofixes.py); "
        "false: stock moto_server.",
    )
    data_dir: str = _setting(
        ".run/data",
        "`make run` only: folder where the local emulator keeps its tables across restarts "
        "(relative to the checkout; empty: nothing kept). The tests' stacks keep nothing.",
    )
    ops_mode: str = _setting(
        "auto",
        "Where `safetyheatmap` ops commands act: `local` (the running `make run` stack), `aws` "
        "(these settings, as the services use them) or `auto` (local if `make run` is up).",
    )
    ecs_cluster: str = _setting("safetyheatmap", "ECS cluster of the services (`scale` in AWS).")
    ecs_worker_service: str = _setting(
        "safetyheatmap-worker", "ECS service of the workers (`scale` in AWS)."
    )
    status_window_minutes: int = _setting(
        15, "Minutes of freshness samples the status reports (1-60)."
    )
    status_cache_ttl: float = _setting(
        2.0, "Seconds the web keeps a status answer (it costs SQS and DynamoDB calls)."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = PREFIX + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            try:
                values[f.name] = _coerce(f.type, raw)
            except ValueError as exc:
                raise SettingsError(f"{key}: {exc}") from exc
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.task_time_limit <= self.task_soft_time_limit:
            raise SettingsError("TASK_TIME_LIMIT must exceed TASK_SOFT_TIME_LIMIT")
        longest = self.longest_task_seconds()
        if self.visibility_timeout <= longest:
            raise SettingsError(
                f"VISIBILITY_TIMEOUT ({self.visibility_timeout}s) must exceed the longest task "
                f"including retries ({longest}s)"
            )
        if not 0 <= self.max_zoom <= 22:
            raise SettingsError("MAX_ZOOM must be within 0..22")
        if self.bandwidth_m <= 0:
            raise SettingsError("BANDWIDTH_M must be positive")
        if self.background_refresh_s < 0:
            raise SettingsError("BACKGROUND_REFRESH_S must be 0 (every run) or positive")
        if self.privacy_min_reports < 1:
            raise SettingsError("PRIVACY_MIN_REPORTS must be at least 1")
        if not 0.5 <= self.privacy_radius_factor <= 4.0:
            raise SettingsError("PRIVACY_RADIUS_FACTOR must be within 0.5..4")
        if self.privacy_pseudonym_rotation_s < 60:
            raise SettingsError("PRIVACY_PSEUDONYM_ROTATION_S must be at least 60")
        if self.rate_limit_per_minute < 0:
            raise SettingsError("RATE_LIMIT_PER_MINUTE must be 0 (off) or positive")
        if self.rate_limit_burst < 1:
            raise SettingsError("RATE_LIMIT_BURST must be at least 1")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError(f"TRUSTED_PROXIES: not a CIDR: {cidr!r}") from None
        self._validate_operations()

    def _validate_operations(self) -> None:
        if self.enqueue_batch_size < 1:
            raise SettingsError("ENQUEUE_BATCH_SIZE must be at least 1")
        if self.store_batch_messages < 1 or self.store_batch_linger_s < 0:
            raise SettingsError("STORE_BATCH_MESSAGES must be at least 1, STORE_BATCH_LINGER_S 0+")
        if self.web_worker_class not in {"gevent", "gevent_pywsgi", "gthread"}:
            raise SettingsError("WEB_WORKER_CLASS must be gevent, gevent_pywsgi or gthread")
        if self.web_connections < 1 or self.web_threads < 1 or self.web_workers < 1:
            raise SettingsError("WEB_WORKERS, WEB_THREADS and WEB_CONNECTIONS must be at least 1")
        if self.web_keepalive < 0:
            raise SettingsError("WEB_KEEPALIVE must be at least 0")
        if self.ops_mode not in {"auto", "local", "aws"}:
            raise SettingsError("OPS_MODE must be auto, local or aws")
        if not 1 <= self.status_window_minutes <= 60:
            raise SettingsError("STATUS_WINDOW_MINUTES must be within 1..60")

    def longest_task_seconds(self) -> int:
        """Worst case one message stays reserved: a try at the hard limit plus the longest
        countdown (a retry's backoff, or the delayed run of the background pass).

        Celery retries re-publish the message, so each retry is a fresh SQS message; we still
        keep the visibility timeout above the whole chain so no countdown outlives it.
        """
        return self.task_time_limit + max(self.retry_backoff_max, int(self.background_refresh_s))

    @property
    def privacy_rule(self) -> Rule:
        """The disclosure rule's numbers."""
        return Rule(self.privacy_min_reports, self.privacy_radius_factor)

    @property
    def endpoint_url(self) -> str | None:
        return self.aws_endpoint_url or None

    def describe(self) -> list[tuple[str, str, str]]:
        """(env var, default, meaning) rows, for the README table and `--help`."""
        rows = []
        for f in fields(self):
            default = f.default
            if isinstance(default, tuple):
                default = ",".join(default)
            rows.append((PREFIX + f.name.upper(), str(default), f.metadata["doc"]))
        return rows

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(kind: Any, raw: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "int":
        return int(raw.strip())
    if kind == "float":
        value = float(raw.strip())
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {raw!r}")
        return value
    if kind == "bool":
        return _parse_bool(raw)
    if kind.startswith("tuple"):
        return _parse_tuple(raw)
    return raw.strip()
