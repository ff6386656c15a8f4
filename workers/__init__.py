"""Celery workers: store reports and derive density grids from them."""
