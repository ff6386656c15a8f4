"""Small read-only facts the page needs: categories and display configuration."""

from __future__ import annotations

import falcon

from shared.config import categories
from shared.config.settings import Settings
from shared.geo.tiles import WINDOWS
from shared.model.report import DESCRIPTION_MAX


class CategoriesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = categories.as_json()
        resp.context.cache = "data"


class ConfigResource:
    def __init__(self, settings: Settings) -> None:
        self._config = {
            "base_tiles_url": settings.base_tiles_url,
            "base_tiles_attribution": settings.base_tiles_attribution,
            "max_zoom": settings.max_zoom,
            "bandwidth_m": settings.bandwidth_m,
            "privacy_min_reports": settings.privacy_min_reports,
            "privacy_radius_m": settings.privacy_radius_factor * settings.bandwidth_m,
            "windows": list(WINDOWS),
            "description_max": DESCRIPTION_MAX,
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._config
        resp.context.cache = "data"
