"""Normalised snapshots of the synthesized templates (infra/tests/snapshots/).

test_synth.py compares every synthesized template with its snapshot, so a refactoring of the
CDK code that would change a logical ID (a replaced resource on deploy) or any property fails
there. Asset hashes are normalised: they change with every edit of a Lambda's code, which a
deploy ships without replacing anything.

``python tests/snapshot.py`` (``make infra-snapshot``) rewrites the snapshots from a fresh synth,
after a template change that is meant; the diff of the snapshot files is then the change.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INFRA = HERE.parent
SNAPSHOTS = HERE / "snapshots"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalise(template: dict[str, Any]) -> dict[str, Any]:
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    normalised: dict[str, Any] = json.loads(text)
    return normalised


def render(template: dict[str, Any]) -> str:
    """The snapshot file's text: sorted keys, one value a line, so diffs read well."""
    return json.dumps(normalise(template), indent=1, sort_keys=True) + "\n"


def snapshot_path(stack_name: str) -> Path:
    return SNAPSHOTS / f"{stack_name}.template.json"


def main() -> None:
    sys.path.insert(0, str(INFRA))
    from app import build_app  # noqa: PLC0415 - infra/app.py, importable once infra/ is on the path

    with tempfile.TemporaryDirectory() as outdir:
        assembly = build_app(outdir=outdir).synth()
        SNAPSHOTS.mkdir(exist_ok=True)
        for stack in assembly.stacks:
            template = json.loads(Path(stack.template_full_path).read_text())
            snapshot_path(stack.stack_name).write_text(render(template))
            print(f"wrote {snapshot_path(stack.stack_name).relative_to(INFRA.parent)}")


if __name__ == "__main__":
    main()
