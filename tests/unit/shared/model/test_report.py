from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.model.report import (
    DESCRIPTION_MAX,
    FIELDS,
    IDEMPOTENCY_KEY_SCHEMA,
    SUBMISSION,
    SUBMISSION_SCHEMA,
    Report,
    Rule,
    ValidationError,
    parse_submission,
    report_id,
    validate_idempotency_key,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GOOD = {"lat": 51.5, "lon": -0.12, "category": "harassment"}


def parse(**changes: object) -> Report:
    body = {**GOOD, **changes}
    body = {k: v for k, v in body.items() if v is not ...}
    return parse_submission(body, now=NOW)


def field_of(**changes: object) -> str | None:
    with pytest.raises(ValidationError) as info:
        parse(**changes)
    return info.value.field


def test_minimal_report_defaults() -> None:
    r = parse()
    assert (r.lat, r.lon, r.category, r.description) == (51.5, -0.12, "harassment", "")
    assert r.occurred_at == NOW and r.received_at == NOW


@pytest.mark.parametrize("name", ["lat", "lon", "category"])
def test_required_fields(name: str) -> None:
    assert field_of(**{name: ...}) == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lat", 90.0001),
        ("lat", -91),
        ("lon", 180.5),
        ("lon", -181),
        ("lat", "51.5"),
        ("lat", True),
        ("lon", None),
        ("lat", float("nan")),
        ("lon", float("inf")),
    ],
)
def test_coordinates_are_finite_numbers_in_range(name: str, value: object) -> None:
    assert field_of(**{name: value}) == name


def test_range_edges_are_accepted() -> None:
    r = parse(lat=-90, lon=180)
    assert (r.lat, r.lon) == (-90.0, 180.0)


@pytest.mark.parametrize("value", ["unknown", "", 3, "Harassment"])
def test_category_must_be_a_known_id(value: object) -> None:
    assert field_of(category=value) == "category"


def test_description_is_trimmed_normalized_and_stripped_of_controls() -> None:
    r = parse(description="  Cafe\u0301\x00 at\u202e night \n")
    assert r.description == "Caf\u00e9 at night"


def test_description_limit_counts_after_trimming() -> None:
    assert parse(description=" " * 10 + "x" * DESCRIPTION_MAX + " ").description == "x" * 500
    assert field_of(description="x" * (DESCRIPTION_MAX + 1)) == "description"
    assert field_of(description=42) == "description"


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T10:00:00",
        "yesterday",
        "2026-13-01T00:00:00Z",
        1700000000,
        "1999-12-31T00:00:00Z",
    ],
)
def test_occurred_at_needs_an_offset_and_a_sane_date(value: object) -> None:
    assert field_of(occurred_at=value) == "occurred_at"


def test_occurred_at_not_in_the_future() -> None:
    assert field_of(occurred_at=(NOW + timedelta(hours=1)).isoformat()) == "occurred_at"
    r = parse(occurred_at="2026-11-27T13:00:00+02:00")
    assert r.occurred_at == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        parse_submission({**GOOD, "email": "a@b"}, now=NOW)
    assert info.value.field == "email"


def test_body_must_be_an_object() -> None:
    with pytest.raises(ValidationError):
        parse_submission([GOOD], now=NOW)


def test_idempotency_key_gives_a_stable_id() -> None:
    assert report_id("abc") == report_id("abc") != report_id("abd")
    assert report_id(None) != report_id(None)
    assert parse_submission(GOOD, now=NOW, idempotency_key="k").id == report_id("k")
    with pytest.raises(ValidationError):
        validate_idempotency_key("x" * 201)
    with pytest.raises(ValidationError):
        validate_idempotency_key("caf\u00e9")


def test_message_round_trip() -> None:
    r = parse(description="dark alley", occurred_at="2026-11-26T22:00:00Z")
    assert Report.from_message(r.to_message()) == r


def test_forged_message_is_rejected() -> None:
    msg = parse().to_message()
    msg["lat"] = 1000
    with pytest.raises(ValidationError):
        Report.from_message(msg)


def test_validation_errors_survive_pickling_between_processes() -> None:
    import pickle  # noqa: PLC0415 - only this test needs it

    err = pickle.loads(pickle.dumps(ValidationError("lat", "must be finite")))  # noqa: S301
    assert (err.field, err.message) == ("lat", "lat: must be finite")


def test_the_schema_is_the_rules_and_they_check_in_its_order() -> None:
    assert FIELDS == tuple(SUBMISSION_SCHEMA["properties"]) == tuple(r.name for r in SUBMISSION)
    assert SUBMISSION_SCHEMA["required"] == ["lat", "lon", "category"]
    # Two wrong fields: the first rule's is named, as clients were told before.
    assert field_of(lat=91, category="nope") == "lat"
    assert field_of(category="nope", description=1) == "category"


@pytest.mark.parametrize(
    ("rule", "inside", "outside"),
    [
        (SUBMISSION[0], 90, 90.5),
        (SUBMISSION[1], -180, -180.5),
        (SUBMISSION[2], "theft", "Theft"),
        (SUBMISSION[3], "x" * DESCRIPTION_MAX, "x" * (DESCRIPTION_MAX + 1)),
        (SUBMISSION[4], "2000-01-01T00:00:00Z", "1999-12-31T23:59:59Z"),
    ],
)
def test_each_rule_accepts_up_to_its_limit(rule: Rule, inside: object, outside: object) -> None:
    rule.check(inside, NOW)
    with pytest.raises(ValidationError) as info:
        rule.check(outside, NOW)
    assert info.value.field == rule.name


def test_the_idempotency_key_limit_is_the_documented_one() -> None:
    longest = "k" * IDEMPOTENCY_KEY_SCHEMA["maxLength"]
    assert validate_idempotency_key(longest) == longest
    with pytest.raises(ValidationError, match="1-200 printable"):
        validate_idempotency_key(longest + "k")
