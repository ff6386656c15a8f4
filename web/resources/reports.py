"""POST /api/safetyheatmap/report/add: validate, enqueue, and only then acknowledge."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import falcon

from shared.model.report import Report, parse_submission, validate_idempotency_key
from web.errors import BodyTooLarge, MalformedJSON, UnsupportedMediaType


class Enqueue(Protocol):
    def __call__(self, report: Report, request_id: str) -> None: ...


class ReportResource:
    def __init__(
        self,
        enqueue: Enqueue,
        clock: Callable[[], datetime],
        max_body: int,
        submitter: Callable[[falcon.Request], str] | None = None,
    ) -> None:
        """``submitter``: the request's submitter pseudonym (``shared.model.pseudonym``), stored
        with
        the report so that the privacy rule counts each submitter once."""
        self._enqueue = enqueue
        self._clock = clock
        self._max_body = max_body
        self._submitter = submitter

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self._read_json(req)
        key = validate_idempotency_key(req.get_header("Idempotency-Key"))
        report = parse_submission(body, now=self._clock(), idempotency_key=key)
        if self._submitter is not None:
            report = replace(report, submitter=self._submitter(req))
        self._enqueue(report, req.context.request_id)
        resp.status = falcon.HTTP_202
        resp.content_type = falcon.MEDIA_JSON
        # json.dumps's very bytes for this dict, without its walk (the ack path's CPU is the
        # limit at 1,000 reports/s): an id is a uuid, nothing in it needs escaping.
        resp.data = b'{"id": "%s", "status": "queued"}' % report.id.encode("ascii")

    def _read_json(self, req: falcon.Request) -> object:
        length = req.content_length
        if length is not None and length > self._max_body:
            raise BodyTooLarge(f"the body must be at most {self._max_body} bytes")
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType("send the report as application/json")
        raw = req.bounded_stream.read(self._max_body + 1)
        if len(raw) > self._max_body:
            raise BodyTooLarge(f"the body must be at most {self._max_body} bytes")
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            # JSON can escape lone surrogates (\ud800), which are not text: refuse them too.
            # Only a \u escape can make one (UTF-8 cannot carry them), so most bodies skip this.
            if b"\\u" in raw:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError) as exc:
            raise MalformedJSON("the body is not valid JSON") from exc
        return body


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
