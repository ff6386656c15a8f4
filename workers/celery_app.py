"""Celery entry: ``celery -A workers.celery_app worker``."""

from shared.config.settings import Settings
from shared.obs.logs import configure_logging
from workers.factory import make_celery

_settings = Settings.from_env()
configure_logging(_settings.log_level, "worker")
app = make_celery(_settings)
