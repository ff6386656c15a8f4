#!/usr/bin/env python3
"""CDK entry point: ``python app.py`` (or ``cdk synth``) writes the templates to ./cdk.out.

Run without the CDK CLI (``make synth``), the app reads cdk.json and cdk.context.json itself, so
a plain Python run sees the same feature flags, settings and cached availability zones as the CLI.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aws_cdk as cdk  # noqa: E402
from safetyheatmap_infra.app_stack import AppStack  # noqa: E402
from safetyheatmap_infra.base_stack import BaseStack  # noqa: E402
from safetyheatmap_infra.config import Config  # noqa: E402


def file_context() -> dict:
    """Context the CDK CLI would pass: cdk.json "context", then cdk.context.json on top."""
    context: dict = {}
    cdk_json = HERE / "cdk.json"
    if cdk_json.exists():
        context.update(json.loads(cdk_json.read_text()).get("context", {}))
    cached = HERE / "cdk.context.json"
    if cached.exists():
        context.update(json.loads(cached.read_text()))
    return context


def build_app(outdir: str | None = None, extra_context: dict | None = None) -> cdk.App:
    run_by_cli = "CDK_CONTEXT_JSON" in os.environ or "CDK_CONTEXT_OVERFLOW_LOCATION" in os.environ
    context = {} if run_by_cli else file_context()
    context.update(extra_context or {})
    app = cdk.App(outdir=outdir, context=context or None)
    config = Config.from_context(app.node)
    env = cdk.Environment(account=config.account, region=config.region)
    base = BaseStack(
        app,
        config.base_stack_name,
        config=config,
        env=env,
        description="SafetyHeatmap base: image repositories and GitHub OIDC deploy roles",
    )
    service = AppStack(
        app,
        config.app_stack_name,
        config=config,
        env=env,
        description="SafetyHeatmap: API, web and worker on ECS Fargate, SQS, DynamoDB, alarms",
    )
    service.add_stack_dependency(base, "images live in the base stack's repositories")
    return app


if __name__ == "__main__":
    build_app(outdir=os.environ.get("CDK_OUTDIR") or str(HERE / "cdk.out")).synth()
