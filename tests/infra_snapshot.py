"""The roll gate's message as the committed infra snapshot holds it: the bytes the hourly roll
gate sends in AWS (infra/safetyheatmap_infra/constructs/roll_windows.py builds them at synth
with shared/model/taskmsg.py; infra/tests/test_synth.py keeps the snapshot equal to a synth)."""

from __future__ import annotations

import json
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "infra/tests/snapshots/SafetyHeatmap.template.json"


def roll_gate_body() -> str:
    resources = json.loads(SNAPSHOT.read_text())["Resources"]
    (body,) = [
        variables["ROLL_BODY"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
        for variables in [resource["Properties"].get("Environment", {}).get("Variables", {})]
        if "ROLL_BODY" in variables
    ]
    return str(body)
