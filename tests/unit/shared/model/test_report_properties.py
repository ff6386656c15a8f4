"""Hypothesis properties of the edge's validation (the grid codec's are in test_gridcodec.py).

* Any JSON object either parses to a report whose fields satisfy SUBMISSION_SCHEMA, or raises
  ValidationError naming a field of the body or of the schema; nothing else escapes.
* Bodies the schema accepts (and whose time is in range) are accepted, values preserved.
* Normalised text has no control characters and no surrounding whitespace, and normalising
  again changes nothing.
* Through the app, any body gets one of the documented answers in the error shape, never a 5xx.

The ``test_gap_*`` tests pin inputs the properties once found (huge integers, times that
overflow after their offset, NFC after stripping, lone surrogates); they must stay fixed.
"""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from falcon import testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from shared.config.categories import CATEGORY_IDS
from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.report import (
    CLOCK_SKEW,
    DESCRIPTION_MAX,
    FIELDS,
    OLDEST,
    SUBMISSION_SCHEMA,
    Report,
    ValidationError,
    normalize_text,
    parse_submission,
)
from web.app import create_app
from web.grids import BlobCache, GridReader
from web.openapi import build_document

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SCHEMA = Draft202012Validator(SUBMISSION_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
PROPERTY = settings(max_examples=300, deadline=None)

# --- strategies --------------------------------------------------------------------------------
# Text that stresses normalisation: controls, zero-width and bidi marks, combining marks,
# compatibility characters, whitespace, lone surrogates, astral characters.
TRICKY = "\x00\x07\t\n\r\x1b\x7f\x85\x9f\u200b\u200d\u200e\u202e\u2028\u2060\ufeff \u00a0\u3000"
MARKS = "\u0301\u0308\u0327\u0323\u031b\u0345\u1dc0"
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY + MARKS + "eEaAoOuUıİﬁÅΩ가각ᄀ\u1161\u11a8"),
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
    ),
    max_size=40,
)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), finite, text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).flatmap(lambda d: st.builds(lambda m: d.replace(tzinfo=_offset(m)), st.integers(-1439, 1439)))
near_now = st.datetimes(min_value=datetime(1999, 12, 31), max_value=datetime(2026, 11, 28)).flatmap(
    lambda d: st.builds(lambda m: d.replace(tzinfo=_offset(m)), st.integers(-840, 840))
)
time_text = st.one_of(
    moments.map(datetime.isoformat),
    near_now.map(datetime.isoformat),
    near_now.map(lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z")),
    near_now.map(lambda d: d.replace(tzinfo=None).isoformat()),  # no offset: rejected
    text,
)
coordinate = st.one_of(
    finite,
    st.floats(min_value=-180, max_value=180),
    st.integers(),
    st.sampled_from([90, -90, 180, -180, 90.0000001, 10**400, -(10**309)]),
    json_value,
)
category = st.one_of(st.sampled_from(sorted(CATEGORY_IDS)), text, json_value)
FIELD_VALUES = {
    "lat": coordinate,
    "lon": coordinate,
    "category": category,
    "description": st.one_of(text, json_value),
    "occurred_at": st.one_of(time_text, json_value),
}
bodies = st.builds(
    lambda known, extra: {**extra, **known},
    st.fixed_dictionaries({}, optional=FIELD_VALUES),
    st.dictionaries(text, json_value, max_size=2),
)
valid_bodies = st.fixed_dictionaries(
    {
        "lat": st.floats(min_value=-90, max_value=90) | st.integers(-90, 90),
        "lon": st.floats(min_value=-180, max_value=180) | st.integers(-180, 180),
        "category": st.sampled_from(sorted(CATEGORY_IDS)),
    },
    optional={
        "description": st.text(st.characters(codec="utf-8"), max_size=DESCRIPTION_MAX),
        "occurred_at": near_now.filter(lambda d: OLDEST <= d <= NOW + CLOCK_SKEW).map(
            datetime.isoformat
        ),
    },
)


# --- known gaps ----------------------------------------------------------------------------------
def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- validation ----------------------------------------------------------------------------------
@PROPERTY
@given(bodies)
@example({"lat": 10**400, "lon": 0, "category": "other"})
@example({"lat": 1, "lon": 2, "category": "theft", "occurred_at": "0001-01-01T00:00:00+01:00"})
@example({"lat": 1, "lon": 2, "category": "theft", "description": "a\ud800"})
@example({"lat": True, "lon": 2, "category": "theft"})
@example({"lat": 1, "lon": 2, "category": "theft", "description": None, "occurred_at": None})
def test_any_json_object_parses_to_a_valid_report_or_names_a_field(
    body: dict[str, Any],
) -> None:
    try:
        report = parse_submission(body, now=NOW)
    except ValidationError as exc:
        assert exc.field is not None
        assert exc.field in set(body) | set(FIELDS)
        assert exc.message
        return
    assert set(body) <= set(FIELDS)
    message = report.to_message()
    fields = {k: message[k] for k in FIELDS}
    assert not list(SCHEMA.iter_errors(fields)), fields
    assert math.isfinite(report.lat) and math.isfinite(report.lon)
    assert report.lat == body["lat"] and report.lon == body["lon"]
    assert report.category == body["category"]
    assert report.description == normalize_text(body.get("description") or "")
    assert OLDEST <= report.occurred_at <= NOW + CLOCK_SKEW
    assert report.occurred_at.utcoffset() == timedelta(0)
    json.dumps(message, ensure_ascii=False).encode()  # what the queue and DynamoDB get


@PROPERTY
@given(valid_bodies)
def test_bodies_the_schema_accepts_are_accepted_unchanged(body: dict[str, Any]) -> None:
    assert not list(SCHEMA.iter_errors(body))
    report = parse_submission(body, now=NOW, idempotency_key="k")
    assert (report.lat, report.lon, report.category) == (
        body["lat"],
        body["lon"],
        body["category"],
    )
    if "occurred_at" in body:
        assert report.occurred_at == datetime.fromisoformat(body["occurred_at"])
    assert report.id == parse_submission(body, now=NOW, idempotency_key="k").id


# --- normalisation -------------------------------------------------------------------------------
CONTROL_OR_INVISIBLE = {"Cc", "Zl", "Zp"}
KEPT = {"\t", "\n"}  # a description may have lines


@PROPERTY
@given(text)
def test_normalised_text_has_no_controls_and_no_surrounding_whitespace(raw: str) -> None:
    out = normalize_text(raw)
    assert out == out.strip()
    assert not any(unicodedata.category(c) in CONTROL_OR_INVISIBLE for c in set(out) - KEPT)
    assert not any(c in out for c in "\u200b\u200e\u202e\u2060\ufeff")


@PROPERTY
@given(text.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
@example("e\u200b\u0301")
def test_gap_normalisation_is_idempotent_and_nfc(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


# --- through the app -----------------------------------------------------------------------------
ADD = "/api/safetyheatmap/report/add"
STATUSES = {"202", "400", "413", "415", "422"}


class _Queue:
    def __init__(self) -> None:
        self.last: Report | None = None

    def __call__(self, report: Report, request_id: str) -> None:
        self.last = report


class _Grids:
    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return {}


QUEUE = _Queue()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> testing.TestClient:
    settings_ = Settings(frontend_dir=str(tmp_path_factory.mktemp("front")))
    reader = GridReader(BlobCache(_Grids(), 1, 8), Pyramid(200, 16))  # type: ignore[arg-type]
    app = create_app(settings_, QUEUE, reader, {}, lambda: NOW)
    return testing.TestClient(app)


ERROR = Draft202012Validator(build_document(Settings())["components"]["schemas"]["Error"])
raw_bodies = st.one_of(
    bodies.map(lambda b: json.dumps(b).encode()),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.just(b'{"lat": 1, "lon": 1, "category": "other", "description": "' + b"x" * 9000 + b'"}'),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw_bodies,
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
)
def test_the_edge_answers_any_body_with_a_documented_status(
    client: testing.TestClient, raw: bytes, content_type: str
) -> None:
    resp = client.simulate_post(ADD, body=raw, headers={"Content-Type": content_type})
    assert str(resp.status_code) in STATUSES, resp.text
    if resp.status_code != 202:
        assert not list(ERROR.iter_errors(resp.json))
        assert "Traceback" not in resp.text and "shared." not in resp.text


# --- the pinned gaps -----------------------------------------------------------------------------
def test_gap_huge_integer_coordinate_is_a_422(client: testing.TestClient) -> None:
    body = b'{"lat": 1' + b"0" * 400 + b', "lon": 0, "category": "other"}'
    resp = client.simulate_post(ADD, body=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json["field"] == "lat"


def test_gap_time_out_of_range_after_its_offset_is_a_422(client: testing.TestClient) -> None:
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        body = {"lat": 1, "lon": 0, "category": "other", "occurred_at": when}
        resp = client.simulate_post(ADD, json=body)
        assert resp.status_code == 422 and resp.json["field"] == "occurred_at", when


def test_gap_lone_surrogates_are_rejected_or_stripped_at_the_edge(
    client: testing.TestClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    key = b'{"\\ud800": 1, "lat": 1, "lon": 1, "category": "other"}'
    assert client.simulate_post(ADD, body=key, headers=headers).status_code in (400, 422)
    QUEUE.last = None
    text = b'{"lat": 1, "lon": 1, "category": "other", "description": "a\\udc00b"}'
    status = client.simulate_post(ADD, body=text, headers=headers).status_code
    if status == 202:
        assert QUEUE.last is not None
        QUEUE.last.description.encode()  # stripped, like the control characters
    else:
        assert status in (400, 422)
