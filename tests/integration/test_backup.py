"""Backup and restore over the real stack: reports posted through the API, exported, the tables
wiped and re-provisioned, imported (twice): the same reports by id, and the same grids, tile
for tile, as before the backup, served the same at two zooms."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.dev.devstack import Stack
from shared.geo import gridcodec
from shared.ops.cli import main as cli
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.provision import provision
from tests.support import LiveStack, poll, post_from

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ENV = {
    "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
    "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
    "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
    "SAFETYHEATMAP_WAIT_TIME_SECONDS": "1",
    "SAFETYHEATMAP_PRIVACY_DISTINCT_SUBMITTERS": "true",  # units are part of what is restored
}
BBOX = "-0.13,51.495,-0.11,51.515"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, Path]]:
    run_dir = Path(tmp_path_factory.mktemp("backup"))
    stack = Stack(run_dir, extra_env=ENV)
    try:
        stack.start(workers=1)
        stack.write_state(run_dir / "stack.json")  # pid: this process, which stays alive
        yield LiveStack(stack), run_dir / "stack.json"
    finally:
        stack.stop()


def _grid_items(live: LiveStack) -> dict[str, bytes]:
    ddb = aws.client(live.settings, "dynamodb")
    out: dict[str, bytes] = {}
    kwargs: dict[str, Any] = {"TableName": live.settings.grids_table}
    while True:
        page = ddb.scan(**kwargs)
        out.update(
            {i["pk"]["S"]: i["g"]["B"] for i in page["Items"] if i["pk"]["S"][:2] in ("d#", "c#")}
        )
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _settled(live: LiveStack) -> bool:
    sqs = live.sqs()
    grids = GridRepository(aws.client(live.settings, "dynamodb"), live.settings.grids_table)
    attrs = sqs.get_queue_attributes(
        QueueUrl=live.queue_url(),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    busy = sum(int(v) for v in attrs.values())
    return busy == 0 and not grids.has_dirty() and not grids.background_markers(1)


def _maps(live: LiveStack) -> list[dict[str, Any]]:
    """heatmap/get at two zooms, without when its tiles were computed (a restore recomputes)."""
    maps = [live.heatmap(bbox=BBOX, zoom=z) for z in (12, 14)]
    return [{k: v for k, v in m.items() if k != "computed_at"} for m in maps]


def _decoded(items: dict[str, bytes]) -> dict[str, list[Any]]:
    return {k: gridcodec.decode(v).tolist() for k, v in items.items()}


def test_export_wipe_import_gives_the_same_grids_and_twice_is_once(
    live: tuple[LiveStack, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, state = live
    rng = random.Random(7)
    # Six clients; the first sends three: two of its reports are not privacy units.
    for i, client in enumerate(["127.0.0.2"] * 3 + [f"127.0.0.{n}" for n in range(3, 8)]):
        body: dict[str, Any] = {
            "lat": 51.505 + rng.gauss(0, 0.002),
            "lon": -0.12 + rng.gauss(0, 0.002),
            "category": "theft" if i % 2 else "harassment",
        }
        assert post_from(stack.url, body, client) == 202
    poll(lambda: len(stack.reports().ids()) == 8, 45, "eight reports stored")
    poll(lambda: _settled(stack), 60, "the grids computed")
    grids_before, maps_before = _decoded(_grid_items(stack)), _maps(stack)
    assert grids_before and any(m["max_value"] > 0 for m in maps_before)

    out = tmp_path / "backup.ndjson"
    assert cli(["--local", "--stack", str(state), "export", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 8 and sum(not line["unit"] for line in lines) == 2

    ddb = aws.client(stack.settings, "dynamodb")
    for table in (stack.settings.reports_table, stack.settings.grids_table):
        ddb.delete_table(TableName=table)
    provision(stack.settings)
    assert not stack.reports().ids() and not _grid_items(stack)

    for _ in range(2):
        assert cli(["--local", "--stack", str(state), "import", str(out)]) == 0
        assert "queued 8 report(s)" in capsys.readouterr().out
        poll(lambda: len(stack.reports().ids()) == 8, 45, "eight reports restored")
        poll(lambda: _settled(stack), 60, "the grids recomputed")
        assert sorted(stack.reports().ids()) == sorted(line["id"] for line in lines)
        assert _decoded(_grid_items(stack)) == grids_before
        assert _maps(stack) == maps_before
