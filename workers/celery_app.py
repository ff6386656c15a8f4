"""Celery entry: ``celery -A workers.celery_app worker``."""

from shared.logs import configure_logging
from shared.settings import Settings
from workers.factory import make_celery

_settings = Settings.from_env()
configure_logging(_settings.log_level, "worker")
app = make_celery(_settings)
