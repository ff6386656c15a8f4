"""The served document and the validation are one contract: no limit drifts between them.

Every constraint is read from the document the app serves (not from the model), and the app is
probed on both sides of it: the documented edge is accepted, one step beyond is refused with the
status the document gives and with ``field`` naming the input. Any field, parameter or limit
added to the document without the check behind it (or the reverse) fails here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from falcon import testing
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.report import (
    IDEMPOTENCY_KEY_SCHEMA,
    SUBMISSION,
    Report,
    validate_idempotency_key,
)
from web.app import create_app
from web.grids import BlobCache, GridReader
from web.openapi import OPENAPI_PATH

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
API = "/api/safetyheatmap"
ADD = f"{API}/report/add"
HEATMAP = f"{API}/heatmap/get"
TILES = f"{API}/heatmap/tiles/{{z}}/{{x}}/{{y}}.png"
TINY_BBOX = "0.01,0.01,0.011,0.011"  # a few cells even at the finest zoom: never over the cap


class _Grids:
    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return {}


class _Queue:
    def __call__(self, report: Report, request_id: str) -> None:
        pass


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.TestClient]:
    front = tmp_path_factory.mktemp("front")
    reader = GridReader(BlobCache(_Grids(), 0.0, 16), Pyramid(200, 16))  # type: ignore[arg-type]
    app = create_app(Settings(frontend_dir=str(front)), _Queue(), reader, {}, lambda: NOW)
    yield testing.TestClient(app)


@pytest.fixture(scope="module")
def doc(client: testing.TestClient) -> dict[str, Any]:
    served: dict[str, Any] = client.simulate_get(OPENAPI_PATH).json
    return served


def _operation(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][path][method]
    return op


def _parameter(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    method = "post" if path == ADD else "get"
    return next(p for p in _operation(doc, path, method)["parameters"] if p["name"] == name)


# --- the request body ---------------------------------------------------------------------------
def _submission(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"]["Submission"]
    return schema


def _valid_body(doc: dict[str, Any]) -> dict[str, Any]:
    media = _operation(doc, ADD, "post")["requestBody"]["content"]["application/json"]
    body: dict[str, Any] = media["example"]
    return body


def _post(client: testing.TestClient, body: Any, **headers: str) -> testing.Result:
    return client.simulate_post(
        ADD, body=json.dumps(body), headers={"Content-Type": "application/json", **headers}
    )


def _refused(resp: testing.Result, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json["field"] == field, resp.json


def test_the_documented_body_is_the_rules_schema(doc: dict[str, Any]) -> None:
    schema = _submission(doc)
    assert set(schema["properties"]) == {rule.name for rule in SUBMISSION}
    for rule in SUBMISSION:
        assert schema["properties"][rule.name] == json.loads(json.dumps(rule.schema()))
    assert schema["required"] == [rule.name for rule in SUBMISSION if rule.required]
    assert schema["additionalProperties"] is False


def test_every_documented_body_limit_is_the_edge_of_what_is_accepted(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    schema = _submission(doc)
    good = _valid_body(doc)
    assert _post(client, good).status_code == 202
    checked = 0
    for name, prop in schema["properties"].items():
        accepted: list[Any] = []
        refused: list[Any] = []
        if "minimum" in prop:
            accepted.append(prop["minimum"])
            refused.append(math.nextafter(prop["minimum"], -math.inf))
        if "maximum" in prop:
            accepted.append(prop["maximum"])
            refused.append(math.nextafter(prop["maximum"], math.inf))
        if "enum" in prop:
            accepted.extend(prop["enum"])
            refused.append("-".join(prop["enum"]))
        if "maxLength" in prop:
            accepted.append("x" * prop["maxLength"])
            refused.append("x" * (prop["maxLength"] + 1))
        if prop.get("format") == "date-time":
            accepted.append(NOW.isoformat())
            refused.append("yesterday")
        if prop["type"] == "number":
            refused.extend(["1", True, None])
        if prop["type"] == "string":
            refused.append(42)
        assert accepted, f"{name}: a property without a documented limit"
        for value in accepted:
            assert _post(client, {**good, name: value}).status_code == 202, (name, value)
        for value in refused:
            _refused(_post(client, {**good, name: value}), 422, name)
        checked += len(accepted) + len(refused)
    assert checked > 20


def test_required_and_unknown_fields_are_as_documented(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    schema = _submission(doc)
    good = _valid_body(doc)
    for name in schema["properties"]:
        without = {k: v for k, v in good.items() if k != name}
        resp = _post(client, without)
        if name in schema["required"]:
            _refused(resp, 422, name)
        else:
            assert resp.status_code == 202, name
    assert not schema["additionalProperties"]
    _refused(_post(client, {**good, "severity": 3}), 422, "severity")


def test_the_idempotency_key_header_limits_are_the_checks(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    key = _parameter(doc, ADD, "Idempotency-Key")["schema"]
    good = _valid_body(doc)
    first = _post(client, good, **{"Idempotency-Key": "k" * key["maxLength"]})
    assert first.status_code == 202
    again = _post(client, good, **{"Idempotency-Key": "k" * key["maxLength"]})
    assert again.json["id"] == first.json["id"]
    too_long = _post(client, good, **{"Idempotency-Key": "k" * (key["maxLength"] + 1)})
    _refused(too_long, 422, "Idempotency-Key")
    _refused(_post(client, good, **{"Idempotency-Key": "\t"}), 422, "Idempotency-Key")


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_every_key_the_documented_pattern_allows_is_accepted(data: st.DataObject) -> None:
    key = data.draw(st.from_regex(IDEMPOTENCY_KEY_SCHEMA["pattern"], fullmatch=True))
    assert validate_idempotency_key(key) == key


# --- the query and path parameters ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["category", "window"])
@pytest.mark.parametrize("path", [HEATMAP, TILES])
def test_every_documented_layer_value_is_accepted_and_no_other(
    client: testing.TestClient, doc: dict[str, Any], path: str, name: str
) -> None:
    options = _parameter(doc, path, name)["schema"]["enum"]
    url = f"{API}/heatmap/tiles/3/1/1.png" if path == TILES else HEATMAP
    query = {} if path == TILES else {"bbox": TINY_BBOX}
    for value in options:
        resp = client.simulate_get(url, params={**query, name: value})
        assert resp.status_code == 200, (path, name, value, resp.text)
    _refused(client.simulate_get(url, params={**query, name: "-".join(options)}), 400, name)


def test_the_documented_zoom_range_is_the_accepted_one(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    zoom = _parameter(doc, HEATMAP, "zoom")["schema"]
    assert zoom["type"] == "integer"
    for value in (zoom["minimum"], zoom["maximum"]):
        resp = client.simulate_get(HEATMAP, params={"bbox": TINY_BBOX, "zoom": str(value)})
        assert resp.status_code == 200, (value, resp.text)
    for value in (zoom["minimum"] - 1, zoom["maximum"] + 1, "1.5"):
        resp = client.simulate_get(HEATMAP, params={"bbox": TINY_BBOX, "zoom": str(value)})
        _refused(resp, 400, "zoom")
    z = _parameter(doc, TILES, "z")["schema"]
    assert z == zoom
    assert client.simulate_get(f"{API}/heatmap/tiles/{z['maximum']}/0/0.png").status_code == 200
    assert client.simulate_get(f"{API}/heatmap/tiles/{z['maximum'] + 1}/0/0.png").status_code == 404


def test_the_documented_bbox_is_required_and_its_example_accepted(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    bbox = _parameter(doc, HEATMAP, "bbox")
    assert bbox["required"] is True
    assert client.simulate_get(HEATMAP, params={"bbox": bbox["example"]}).status_code == 200
    _refused(client.simulate_get(HEATMAP), 400, "bbox")
    for wrong in ("1,2,3", "a,b,c,d", "10,0,5,1", "0,0,1,91"):
        _refused(client.simulate_get(HEATMAP, params={"bbox": wrong}), 400, "bbox")


def test_documented_error_examples_are_what_the_code_answers(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    answers = {
        (ADD, "422"): _post(client, {**_valid_body(doc), "lat": 91}),
        (HEATMAP, "400"): client.simulate_get(HEATMAP),
        (TILES, "400"): client.simulate_get(
            f"{API}/heatmap/tiles/3/1/1.png", params={"window": "2d"}
        ),
    }
    for (path, status), resp in answers.items():
        method = "post" if path == ADD else "get"
        example = _operation(doc, path, method)["responses"][status]["content"]
        assert resp.json == example["application/json"]["example"], path


def test_the_documented_bodies_are_at_the_documented_statuses(
    client: testing.TestClient, doc: dict[str, Any]
) -> None:
    """400/413/415: the body's own problems, each at the status the document gives it."""
    responses = _operation(doc, ADD, "post")["responses"]
    cases = {
        "400": client.simulate_post(ADD, body="{", headers={"Content-Type": "application/json"}),
        "413": client.simulate_post(
            ADD, body="x" * 70000, headers={"Content-Type": "application/json"}
        ),
        "415": client.simulate_post(ADD, body="{}", headers={"Content-Type": "text/plain"}),
    }
    for status, resp in cases.items():
        assert str(resp.status_code) == status
        example = responses[status]["content"]["application/json"]["example"]
        assert resp.json == example, status
