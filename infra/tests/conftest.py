"""One synth per test session; every test reads the same cloud assembly.

The assembly is written to infra/cdk.out (or $CDK_OUTDIR), so `make test-infra` lints exactly
the templates these tests asserted on, without a second synth.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
sys.path.insert(0, str(INFRA))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from app import build_app  # noqa: E402 - infra/app.py, importable once infra/ is on the path
from aws_cdk.assertions import Template  # noqa: E402
from safetyheatmap_infra.config import Config  # noqa: E402


@dataclass
class Synth:
    outdir: Path
    manifest: dict[str, Any]
    templates: dict[str, dict[str, Any]]
    config: Config

    def resources(self, stack: str, kind: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == kind
        }

    def one(self, stack: str, kind: str, **match: Any) -> dict[str, Any]:
        found = [
            r
            for r in self.resources(stack, kind).values()
            if all(r["Properties"].get(k) == v for k, v in match.items())
        ]
        assert len(found) == 1, f"expected one {kind} with {match}, found {len(found)}"
        return found[0]["Properties"]


@pytest.fixture(scope="session")
def synth() -> Synth:
    outdir = Path(os.environ.get("CDK_OUTDIR") or INFRA / "cdk.out")
    app = build_app(outdir=str(outdir))
    assembly = app.synth()
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    templates = {
        stack.stack_name: json.loads(Path(stack.template_full_path).read_text())
        for stack in assembly.stacks
    }
    return Synth(Path(assembly.directory), manifest, templates, Config.from_context(app.node))


@pytest.fixture(scope="session")
def config(synth: Synth) -> Config:
    return synth.config


@pytest.fixture(scope="session")
def app_name(config: Config) -> str:
    return config.app_stack_name


@pytest.fixture(scope="session")
def base_name(config: Config) -> str:
    return config.base_stack_name


@pytest.fixture(scope="session")
def app_template(synth: Synth, app_name: str) -> Template:
    return Template.from_json(synth.templates[app_name])


@pytest.fixture(scope="session")
def base_template(synth: Synth, base_name: str) -> Template:
    return Template.from_json(synth.templates[base_name])
