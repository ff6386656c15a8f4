"""The OpenAPI 3.1 document, built from the objects the code validates and answers with.

The request body's schema is :data:`shared.model.report.SUBMISSION_SCHEMA`, built from the rules
that validate it; query and path parameters come from :mod:`web.params`, which the resources
parse with; limits from :class:`Settings`, and the error shape from :func:`web.errors.error_body`.
tests/unit/web/test_openapi.py checks that every route of the app is documented with its methods
(and nothing else is), that every example validates, and that real answers of the app validate
against the documented schemas; tests/unit/web/test_openapi_contract.py that the code accepts
exactly up to the documented limits.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from shared.config.settings import Settings
from web.openapi.components import schemas
from web.openapi.export import export_paths
from web.openapi.paths import API, OPENAPI_PATH, paths

__all__ = ["API", "OPENAPI_PATH", "build_document", "schemas"]


def build_document(settings: Settings, *, status: bool = True) -> dict[str, Any]:
    """``status``: whether the app serves the operators' status route (create_app's choice)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SafetyHeatmap",
            "version": _version(),
            "description": (
                "Report unsafe places and read where reports cluster, as a kernel-density "
                "heatmap. Every error has the body {error, message, field, errors}."
            ),
        },
        "paths": {**paths(settings, status=status), **export_paths(settings)},
        "components": {"schemas": schemas(settings)},
    }


def _version() -> str:
    try:
        return importlib.metadata.version("safetyheatmap")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "0.0.0"
