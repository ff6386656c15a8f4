"""CPU of the app alone: our Falcon app vs bench/benchlib.py's baselines, in-process.

    .venv/bin/python bench/app_cost.py [--calls 20000]

The WSGI callables are called in-process (no server, no socket), the app built by the same
factory gunicorn uses, its tables in moto's in-process emulator. A tile is read once (200),
then asked for with its ETag (304) over and over; the baseline is the static-bytes endpoint
doing the same. Then a report submission (validation, the access line, the metrics, the
answer) with the queue replaced by a no-op, against the no-op POST of bench/load_ack.py. The
best of several rounds is kept, so other jobs on the shared box stay out of it.
bench/load_reads.py and bench/load_ack.py measure whole requests under gunicorn; together
they say how much of a request's cost is the app's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:  # `python bench/app_cost.py` from a checkout
        sys.path.insert(0, str(extra))

import io  # noqa: E402
import json  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import benchlib  # noqa: E402
import falcon.testing  # noqa: E402
from moto import mock_aws  # noqa: E402

from shared.config.settings import Settings  # noqa: E402
from shared.obs.logs import configure_logging  # noqa: E402
from shared.store.provision import provision  # noqa: E402
from web.app import create_app  # noqa: E402
from web.grids import RecentAnswers  # noqa: E402
from web.wiring import build_app  # noqa: E402

TILE = "/api/safetyheatmap/heatmap/tiles/13/4093/2724.png"

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def call(app: App, environ: dict[str, Any]) -> tuple[str, dict[str, str]]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        seen["status"], seen["headers"] = status, {k.lower(): v for k, v in headers}

    b"".join(app(environ, start_response))
    return seen["status"], seen["headers"]


def best_us(app: App, environ: dict[str, Any], calls: int, rounds: int = 5) -> float:
    body = environ.get("bench.body")
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            fresh = dict(environ)
            if body is not None:  # a POST reads its body: a new stream each call
                fresh["wsgi.input"] = io.BytesIO(body)
            call(app, fresh)
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


def conditional(app: App, path: str) -> dict[str, Any]:
    status, headers = call(app, falcon.testing.create_environ(path))
    assert status.startswith("200"), status
    environ = falcon.testing.create_environ(path, headers={"If-None-Match": headers["etag"]})
    status, _ = call(app, dict(environ))
    assert status.startswith("304"), status
    return environ


def submission(path: str) -> dict[str, Any]:
    body = json.dumps(
        {"lat": 51.5, "lon": -0.12, "category": "harassment", "description": "dark alley"}
    ).encode()
    environ = falcon.testing.create_environ(
        path, method="POST", body=body, headers={"Content-Type": "application/json"}
    )
    environ["bench.body"] = body
    return environ


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    with mock_aws():
        settings = Settings.from_env({"SAFETYHEATMAP_AWS_ENDPOINT_URL": ""})
        provision(settings)
        # The access line is written, as in service. Left open: the metrics flush at exit.
        sink = open(os.devnull, "w")  # noqa: SIM115
        configure_logging("INFO", "web", sink)
        app = build_app(settings)
        ours = best_us(app, conditional(app, TILE), args.calls)
        base_app = benchlib.create_noop()
        base = best_us(base_app, conditional(base_app, "/static"), args.calls)
        unlimited = Settings.from_env({"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"})  # as load_ack
        poster = create_app(
            unlimited,
            enqueue=lambda report, request_id: None,
            reader=None,  # type: ignore[arg-type]  # no read in this measure
            ready_checks={},
            clock=lambda: datetime.now(UTC),
            recent=RecentAnswers(0),  # nor its answers
        )
        add = submission("/api/safetyheatmap/report/add")
        status, _ = call(poster, dict(add, **{"wsgi.input": io.BytesIO(add["bench.body"])}))
        assert status.startswith("202"), status
        ours_post = best_us(poster, add, args.calls)
        base_post = best_us(base_app, submission("/noop"), args.calls)
    print(f"CPU per call, app only, best of 5 x {args.calls}:")
    print(
        f"  tile 304: ours {ours:.1f} us, baseline {base:.1f} us, difference {ours - base:.1f} us"
    )
    print(
        f"  report/add (queue a no-op): ours {ours_post:.1f} us, no-op POST {base_post:.1f} us, "
        f"difference {ours_post - base_post:.1f} us"
    )


if __name__ == "__main__":
    main()
