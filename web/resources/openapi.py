"""GET /api/safetyheatmap/openapi.json: the OpenAPI document, rendered once per process."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import falcon


class OpenApiResource:
    def __init__(self, document: dict[str, Any]) -> None:
        self._body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        self._etag = '"' + hashlib.blake2b(self._body, digest_size=12).hexdigest() + '"'

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.etag = self._etag
        resp.context.cache = "data"
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body
