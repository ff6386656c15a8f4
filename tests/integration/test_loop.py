"""The whole loop over real processes: report in, heatmap out."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from shared.geo import gridcodec
from shared.geo.tiles import TILE, Pyramid, lonlat_to_world
from shared.model.taskmsg import STORE_REPORT, celery_body
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.keys import grid_key
from tests.support import LiveStack, live_stack, new_key, poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack of this module's own: its peak and drain checks read the whole of central London,
    where the session's shared stack holds other modules' reports, in an order set by xdist."""
    with live_stack(tmp_path_factory.mktemp("loop")) as s:
        yield s


BIG = (51.5074, -0.1278)  # lat, lon: 130 reports
SMALL = (51.5155, -0.0922)  # 70 reports, ~3 km away
BBOX = "-0.16,51.49,-0.06,51.53"


def _cluster(rng: random.Random, centre: tuple[float, float], n: int) -> list[dict[str, object]]:
    lat, lon = centre
    return [
        {
            "lat": lat + rng.gauss(0, 0.0015),
            "lon": lon + rng.gauss(0, 0.0025),
            "category": rng.choice(["harassment", "poor_lighting"]),
        }
        for _ in range(n)
    ]


def test_reports_become_a_heatmap_peaking_in_the_larger_cluster(stack: LiveStack) -> None:
    rng = random.Random(7)
    bodies = _cluster(rng, BIG, 130) + _cluster(rng, SMALL, 70)
    rng.shuffle(bodies)
    acked = []
    for body in bodies:
        resp = stack.post_report(body)
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "queued"
        acked.append(resp.json()["id"])
    assert len(set(acked)) == 200

    def reflected() -> dict[str, object] | None:
        grid = stack.heatmap(bbox=BBOX, zoom=13)
        return grid if grid["max_value"] and float(grid["max_value"]) > 0 else None

    poll(reflected, 60, "the heatmap to show the clusters")
    # All 200 are in once the grid's total mass stops growing and every id is stored.
    reports = stack.reports()
    poll(lambda: set(acked) <= set(reports.ids()), 60, "every acknowledged report stored")
    stored = Counter(reports.ids())
    assert all(stored[i] == 1 for i in acked)

    def settled() -> dict[str, object] | None:
        grid = stack.heatmap(bbox=BBOX, zoom=13)
        values = np.asarray(grid["values"])
        r, c = np.unravel_index(np.argmax(values), values.shape)
        west, south, east, north = grid["bbox"]
        lon = west + (c + 0.5) / grid["width"] * (east - west)
        lat = north - (r + 0.5) / grid["height"] * (north - south)
        near_big = abs(lat - BIG[0]) < 0.01 and abs(lon - BIG[1]) < 0.015
        return grid if near_big else None

    grid = poll(settled, 60, "the peak to sit in the larger cluster")
    assert grid["unit"] == "reports/km2"
    assert grid["category"] == "all" and grid["window"] == "all"
    assert len(grid["values"]) == grid["height"] and len(grid["values"][0]) == grid["width"]


def test_idempotency_key_acknowledges_the_same_id(stack: LiveStack) -> None:
    key = new_key()
    body = {"lat": 48.8566, "lon": 2.3522, "category": "theft"}
    first = stack.post_report(body, {"Idempotency-Key": key})
    second = stack.post_report(body, {"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    reports = stack.reports()
    poll(lambda: reports.partition_of_id(first.json()["id"]), 30, "the report stored")
    assert Counter(reports.ids())[first.json()["id"]] == 1


def test_a_request_id_is_logged_by_the_web_and_by_the_task_that_stores_its_report(
    stack: LiveStack,
) -> None:
    """One JSON line per request and per task, the client's request id in both (the web's
    access lines are written by a flusher thread, so this also shows they arrive)."""
    request_id = f"it-{uuid.uuid4().hex[:12]}"
    resp = stack.post_report(
        {"lat": 45.0, "lon": 7.0, "category": "theft"}, {"X-Request-Id": request_id}
    )
    assert resp.status_code == 202 and resp.headers["X-Request-Id"] == request_id
    report_id = resp.json()["id"]

    def lines(pattern: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted(stack.stack.run_dir.glob(pattern)):
            for line in path.read_text(errors="replace").splitlines():
                if request_id in line and line.startswith("{"):
                    found.append(json.loads(line))
        return found

    web = poll(lambda: lines("web.log"), 10, "the access line")
    assert [(x["logger"], x["method"], x["status"]) for x in web] == [
        ("safetyheatmap.access", "POST", 202)
    ]
    assert web[0]["duration_ms"] >= 0 and web[0]["path"] == "/api/safetyheatmap/report/add"
    task = poll(
        lambda: [x for x in lines("worker*.log") if x["msg"] == "reports stored"], 30, "the task"
    )
    assert request_id in task[0]["request_ids"] and report_id in task[0]["report_ids"]
    assert task[0]["outcome"] == "stored" and task[0]["logger"] == "safetyheatmap.tasks"


def test_same_message_delivered_twice_stores_and_counts_once(stack: LiveStack) -> None:
    report_id = new_key()
    now = datetime.now(UTC).isoformat()
    payload = {
        "id": report_id,
        "lat": -33.8688,
        "lon": 151.2093,
        "category": "assault",
        "description": "",
        "occurred_at": now,
        "received_at": now,
    }
    body = celery_body(STORE_REPORT, [payload], stack.settings.queue_name)
    sqs = stack.sqs()
    url = stack.queue_url()
    sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody=body)

    reports = stack.reports()
    partition = poll(lambda: reports.partition_of_id(report_id), 30, "the report stored")
    grids = GridRepository(aws.client(stack.settings, "dynamodb"), stack.settings.grids_table)
    pyr = Pyramid(stack.settings.bandwidth_m, stack.settings.max_zoom)
    z, px, py = (int(v) for v in partition.split("/"))
    zc = pyr.compute_zoom
    tile = (px >> (z - zc), py >> (z - zc))
    key = grid_key("c", "assault|all", zc, *tile)

    def counted() -> int:
        found = grids.get_many([key])
        return int(gridcodec.decode(found[key][0]).sum()) if key in found else 0

    poll(lambda: counted() >= 1, 30, "the report counted")

    # Both deliveries have been processed once the queue is empty and nothing is in flight.
    def drained() -> bool:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        )

    poll(drained, 30, "both deliveries processed")
    poll(lambda: not grids.dirty_markers(), 30, "recompute finished")
    assert Counter(reports.ids())[report_id] == 1
    assert counted() == 1


def test_overview_zooms_catch_up_after_a_burst(stack: LiveStack) -> None:
    """Fine zooms follow every run; overview zooms (<= OVERVIEW_ZOOM) follow on their cadence,
    through a delayed run when no later report comes: both end up counting every report."""
    grids = GridRepository(aws.client(stack.settings, "dynamodb"), stack.settings.grids_table)
    pyr = Pyramid(stack.settings.bandwidth_m, stack.settings.max_zoom)
    lat, lon = -41.2865, 174.7762  # nowhere near the other tests' reports
    zo, zc = stack.settings.overview_zoom, pyr.compute_zoom

    def total(z: int) -> int:
        """Reports counted in the cells around the place (other tests report elsewhere)."""
        mx, my = lonlat_to_world(np.array([lon]), np.array([lat]))
        col, row = int(mx[0] * (TILE << z)), int(my[0] * (TILE << z))
        key = grid_key("c", "all|all", z, col // TILE, row // TILE)
        found = grids.get_many([key])
        if key not in found:
            return 0
        r, c = row % TILE, col % TILE  # the place is far from any tile edge at these zooms
        near = gridcodec.decode(found[key][0])[max(r - 10, 0) : r + 11, max(c - 10, 0) : c + 11]
        return int(near.sum())

    for burst in range(3):
        for k in range(3):
            body = {"lat": lat + 0.0005 * k, "lon": lon + 0.0005 * burst, "category": "theft"}
            assert stack.post_report(body).status_code == 202
        n = 3 * (burst + 1)
        poll(lambda n=n: total(zc) == n, 30, f"{n} reports at the compute zoom")
    for z in (zo, 0):
        poll(lambda z=z: total(z) == 9, 30, f"all 9 reports at overview zoom {z}")
    poll(lambda: not grids.background_markers(), 30, "no overview work left")
