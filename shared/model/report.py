"""The report model and the one schema that guards the edge.

The web service validates with :func:`parse_submission` and the worker decodes queue messages
with :meth:`Report.from_message`; both go through the same rules so a message that reached the
queue is always a valid report.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config.categories import CATEGORY_IDS

DESCRIPTION_MAX = 500
CLOCK_SKEW = timedelta(minutes=5)
"""A phone's clock may run a little ahead; later than this is 'in the future'."""

OLDEST = datetime(2000, 1, 1, tzinfo=UTC)

ID_NAMESPACE = uuid.UUID("7c3a3a5e-2f51-4f0e-9d43-7b0f5e0b8a11")

FIELDS = ("lat", "lon", "category", "description", "occurred_at")

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ud800-\udfff]"
)
_SUBMITTER = re.compile(r"(?:[0-9a-f]{8,64})?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)

# JSON Schema of the request body; published in the OpenAPI document. The checks below
# implement it (plus what JSON Schema cannot say: NFC, control characters, not in the future).
SUBMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lat", "lon", "category"],
    "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "category": {"type": "string", "enum": sorted(CATEGORY_IDS)},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX},
        "occurred_at": {"type": "string", "format": "date-time"},
    },
}


class ValidationError(ValueError):
    """A field of a submission is wrong; ``field`` names it for the client."""

    def __init__(self, field: str | None, message: str) -> None:
        text = f"{field}: {message}" if field else message
        super().__init__(text)
        self.field = field
        self.message = text
        self._detail = message

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str | None, str]]:
        # Celery and billiard pickle exceptions across processes: rebuild from both fields.
        return (ValidationError, (self.field, self._detail))


@dataclass(frozen=True)
class Report:
    id: str
    lat: float
    lon: float
    category: str
    description: str
    occurred_at: datetime
    received_at: datetime
    submitter: str = ""
    """The submitter's pseudonym (``shared.model.pseudonym``): set by the web, never by the client,
    stored with the report and never returned. Empty: unknown (every report its own)."""

    def to_message(self) -> dict[str, Any]:
        message = {
            "id": self.id,
            "lat": self.lat,
            "lon": self.lon,
            "category": self.category,
            "description": self.description,
            "occurred_at": self.occurred_at.isoformat(),
            "received_at": self.received_at.isoformat(),
        }
        if self.submitter:
            message["submitter"] = self.submitter
        return message

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Report:
        """Decode a queue message; re-checks the schema so a forged message cannot slip in."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ValidationError("id", "missing")
        received = _parse_time(data.get("received_at"), "received_at")
        fields = validate_fields(
            {k: data.get(k) for k in FIELDS if data.get(k) is not None}, now=received
        )
        submitter = data.get("submitter") or ""
        if not isinstance(submitter, str) or not _SUBMITTER.fullmatch(submitter):
            raise ValidationError("submitter", "must be a pseudonym (hex)")
        return cls(
            id=str(uuid.UUID(data["id"])), received_at=received, submitter=submitter, **fields
        )


def parse_submission(body: Any, *, now: datetime, idempotency_key: str | None = None) -> Report:
    """Validate a decoded JSON body into a report with a fresh (or key-derived) id."""
    if not isinstance(body, dict):
        raise ValidationError(None, "the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "unknown field")
    fields = validate_fields(body, now=now)
    return Report(id=report_id(idempotency_key), received_at=now, **fields)


def report_id(idempotency_key: str | None) -> str:
    """A retry with the same key must get the same id, across processes and restarts."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(ID_NAMESPACE, idempotency_key))


def validate_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= 200 or not key.isascii() or not key.isprintable():
        raise ValidationError("Idempotency-Key", "must be 1-200 printable ASCII characters")
    return key


def validate_fields(body: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    return {
        "lat": _coordinate(body, "lat", 90.0),
        "lon": _coordinate(body, "lon", 180.0),
        "category": _category(body.get("category")),
        "description": _description(body.get("description")),
        "occurred_at": _occurred_at(body.get("occurred_at"), now),
    }


def normalize_text(raw: str) -> str:
    """NFC so equal-looking text is equal; control and bidi characters stripped."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", raw)).strip()


def _coordinate(body: dict[str, Any], name: str, limit: float) -> float:
    if name not in body:
        raise ValidationError(name, "is required")
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, "must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValidationError(name, f"must be between -{limit:g} and {limit:g}") from None
    if not math.isfinite(number):
        raise ValidationError(name, "must be finite")
    if not -limit <= number <= limit:
        raise ValidationError(name, f"must be between -{limit:g} and {limit:g}")
    return number


def _category(value: Any) -> str:
    if value is None:
        raise ValidationError("category", "is required")
    if not isinstance(value, str) or value not in CATEGORY_IDS:
        raise ValidationError("category", "must be one of " + ", ".join(sorted(CATEGORY_IDS)))
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("description", "must be a string")
    text = normalize_text(value)
    if len(text) > DESCRIPTION_MAX:
        raise ValidationError("description", f"must be at most {DESCRIPTION_MAX} characters")
    return text


def _occurred_at(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    when = _parse_time(value, "occurred_at")
    if when > now + CLOCK_SKEW:
        raise ValidationError("occurred_at", "must not be in the future")
    if when < OLDEST:
        raise ValidationError("occurred_at", "must not be before 2000-01-01")
    return when


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(name, "must be an ISO-8601 date-time with an offset")
    text = value.strip()
    if not _OFFSET.search(text):
        raise ValidationError(name, "must include a UTC offset, e.g. 2026-01-31T20:15:00+01:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(name, "must be an ISO-8601 date-time with an offset") from None
    if parsed.tzinfo is None:  # pragma: no cover - the regex above guarantees an offset
        raise ValidationError(name, "must include a UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValidationError(name, "must be an ISO-8601 date-time with an offset") from None
