"""One line of a backup (``safetyheatmap export``/``import``): a stored report as NDJSON.

A line holds what the grids are derived from and nothing that names a person: id, position,
category, both times, and ``unit`` (whether the report counted towards the privacy threshold,
i.e. was its pseudonym's first). No pseudonym, no address, no description. Decoding re-checks
every field with the report model's own rules so a restore cannot store what the web would
have refused.
"""

from __future__ import annotations

import json
from typing import Any

from shared.model.report import Report, ValidationError

FIELDS = ("id", "lat", "lon", "category", "occurred_at", "received_at", "unit")

IMPORTED_NOT_UNIT = "0" * 64
"""The pseudonym a restored non-unit report is stored with: longer than any real one (32 hex),
and claimed by no restored report (the import claims it first), so such reports stay outside
the privacy threshold's count exactly as before the backup."""


def encode_line(
    rid: str, lat: float, lon: float, category: str, occurred: str, received: str, unit: bool
) -> str:
    return json.dumps(
        {
            "id": rid,
            "lat": lat,
            "lon": lon,
            "category": category,
            "occurred_at": occurred,
            "received_at": received,
            "unit": unit,
        },
        separators=(",", ":"),
    )


def decode_line(text: str) -> tuple[Report, bool]:
    """The report a line restores and whether it is a unit; ValidationError names the field."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(None, f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValidationError(None, "must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "unknown field")
    for name in ("occurred_at", "received_at", "lat", "lon", "category"):
        if name not in data:
            raise ValidationError(name, "is required")
    unit = data.get("unit", True)
    if not isinstance(unit, bool):
        raise ValidationError("unit", "must be true or false")
    try:
        report = Report.from_message({k: v for k, v in data.items() if k != "unit"})
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("id", "must be a report id (UUID)") from None
    if not unit:
        report = Report(**{**report.__dict__, "submitter": IMPORTED_NOT_UNIT})
    return report, unit
