"""The committed frontend build, served as is.

Hashed assets are cacheable; the page itself revalidates so a deploy shows at once. Paths are
resolved inside the build folder only, so no request can read outside it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import falcon

TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}


class StaticFiles:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        rel = req.path.lstrip("/") or "index.html"
        path = (self._root / rel).resolve()
        if not path.is_relative_to(self._root):
            raise falcon.HTTPNotFound()
        if not path.is_file():
            if "." in rel.rsplit("/", 1)[-1]:
                raise falcon.HTTPNotFound()
            path = self._root / "index.html"  # client-side routes fall back to the page
            if not path.is_file():
                raise falcon.HTTPNotFound()
        suffix = path.suffix.lower()
        resp.content_type = (
            TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or ("application/octet-stream")
        )
        resp.data = path.read_bytes()
        resp.context.cache = "static" if "/assets/" in f"/{rel}" else "revalidate"
