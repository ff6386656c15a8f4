"""Gunicorn entry: ``gunicorn -c web/gunicorn_conf.py 'web.wsgi:create()'``."""

from __future__ import annotations

import falcon

from shared.logs import configure_logging
from shared.settings import Settings
from web.wiring import build_app


def create() -> falcon.App:
    settings = Settings.from_env()
    configure_logging(settings.log_level, "web")
    return build_app(settings)
