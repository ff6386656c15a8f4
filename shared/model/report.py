"""The report model and the one contract that guards the edge.

The web service validates with :func:`parse_submission` and the worker decodes queue messages
with :meth:`Report.from_message`; both go through the same rules so a message that reached the
queue is always a valid report. Each rule (:class:`Coordinate`, :class:`Choice`, :class:`Text`,
:class:`Moment`) holds its limits once and gives both the check and its JSON Schema fragment;
:data:`SUBMISSION_SCHEMA`, which the OpenAPI document publishes, is built from the rules, so the
document cannot promise other limits than the code enforces.

Hand-written rather than a schema library: none is a runtime dependency of the images, the
edge also needs what JSON Schema cannot say (NFC, control characters, an explicit offset, not in
the future) with messages that name the field, and the ack path is CPU-bound (1,000 reports/s):
jsonschema's Draft 2020-12 validator alone took 2.5-5 times as long as this whole parse (36
against 14 us, 105 against 19 us under load; timeit of the OpenAPI example body, Python 3.11).
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.config.categories import CATEGORY_IDS

DESCRIPTION_MAX = 500
CLOCK_SKEW = timedelta(minutes=5)
"""A phone's clock may run a little ahead; later than this is 'in the future'."""

OLDEST = datetime(2000, 1, 1, tzinfo=UTC)

ID_NAMESPACE = uuid.UUID("7c3a3a5e-2f51-4f0e-9d43-7b0f5e0b8a11")

IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": IDEMPOTENCY_KEY_MAX,
    # Printable ASCII without surrounding spaces (the check strips them; the document asks for
    # the key as it is kept).
    "pattern": rf"^[!-~](?:[ -~]{{0,{IDEMPOTENCY_KEY_MAX - 2}}}[!-~])?$",
}

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ud800-\udfff]"
)
_SUBMITTER = re.compile(r"(?:[0-9a-f]{8,64})?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_MISSING: Any = object()
"""A field absent from the body (as opposed to present as null)."""


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


class Rule(Protocol):
    """One body field: its name, whether it is required, its check and its JSON Schema."""

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> bool: ...

    def schema(self) -> dict[str, Any]: ...

    def check(self, value: Any, now: datetime) -> Any:
        """The field's value as stored; ``value`` is ``_MISSING`` when the body lacks it."""
        ...


@dataclass(frozen=True)
class Coordinate:
    """A required finite number in [-limit, limit] (booleans are not numbers here)."""

    name: str
    limit: int
    required: bool = True

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": -self.limit, "maximum": self.limit}

    def check(self, value: Any, now: datetime) -> float:
        name, limit = self.name, self.limit
        if value is _MISSING:
            raise ValidationError(name, "is required")
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


@dataclass(frozen=True)
class Choice:
    """A required string out of a fixed list (published in this order)."""

    name: str
    options: tuple[str, ...]
    required: bool = True

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.options)}

    def check(self, value: Any, now: datetime) -> str:
        if value is _MISSING or value is None:
            raise ValidationError(self.name, "is required")
        if not isinstance(value, str) or value not in self.options:
            raise ValidationError(self.name, "must be one of " + ", ".join(self.options))
        return value


@dataclass(frozen=True)
class Text:
    """Optional free text (empty when absent), at most ``max_length`` once normalised."""

    name: str
    max_length: int
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length}

    def check(self, value: Any, now: datetime) -> str:
        if value is _MISSING or value is None:
            return ""
        if not isinstance(value, str):
            raise ValidationError(self.name, "must be a string")
        text = normalize_text(value)
        if len(text) > self.max_length:
            raise ValidationError(self.name, f"must be at most {self.max_length} characters")
        return text


@dataclass(frozen=True)
class Moment:
    """An optional date-time with an offset (now when absent), from ``oldest`` to now + skew."""

    name: str
    oldest: datetime
    skew: timedelta
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def check(self, value: Any, now: datetime) -> datetime:
        if value is _MISSING or value is None:
            return now
        when = parse_time(value, self.name)
        if when > now + self.skew:
            raise ValidationError(self.name, "must not be in the future")
        if when < self.oldest:
            raise ValidationError(self.name, f"must not be before {self.oldest:%Y-%m-%d}")
        return when


SUBMISSION: tuple[Rule, ...] = (
    Coordinate("lat", 90),
    Coordinate("lon", 180),
    Choice("category", tuple(sorted(CATEGORY_IDS))),
    Text("description", DESCRIPTION_MAX),
    Moment("occurred_at", OLDEST, CLOCK_SKEW),
)
"""The request body's fields, in the order they are checked (the first wrong one is named)."""

FIELDS = tuple(rule.name for rule in SUBMISSION)

SUBMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [rule.name for rule in SUBMISSION if rule.required],
    "properties": {rule.name: rule.schema() for rule in SUBMISSION},
}
"""JSON Schema of the request body, published in the OpenAPI document."""


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
        received = parse_time(data.get("received_at"), "received_at")
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
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise ValidationError(
            "Idempotency-Key", f"must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters"
        )
    return key


def validate_fields(body: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    return {rule.name: rule.check(body.get(rule.name, _MISSING), now) for rule in SUBMISSION}


def normalize_text(raw: str) -> str:
    """NFC so equal-looking text is equal; control and bidi characters stripped."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", raw)).strip()


def parse_time(value: Any, name: str) -> datetime:
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
