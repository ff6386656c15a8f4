"""Gunicorn entry: ``gunicorn -c web/gunicorn_conf.py 'web.wsgi:create()'``."""

from __future__ import annotations

from shared.config.settings import Settings
from shared.obs.logs import configure_logging
from web.replay import WsgiApp
from web.wiring import build_app


def create() -> WsgiApp:
    settings = Settings.from_env()
    configure_logging(settings.log_level, "web")
    return build_app(settings)
