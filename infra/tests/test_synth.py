"""The synth itself: fixed environment, committed context, nothing invented."""

from __future__ import annotations

import json

from conftest import INFRA
from snapshot import normalise, snapshot_path


def test_both_stacks_are_synthesized(synth, app_name, base_name):
    assert set(synth.templates) == {app_name, base_name}


def test_no_context_lookup_is_missing(synth):
    # A missing lookup means CDK silently used dummy availability zones.
    assert not synth.manifest.get("missing"), synth.manifest.get("missing")


def test_availability_zones_come_from_committed_context(synth, config):
    cached = json.loads((INFRA / "cdk.context.json").read_text())
    key = f"availability-zones:account={config.account}:region={config.region}"
    assert key in cached, (
        "run `cdk context`/`cdk synth` with credentials and commit cdk.context.json"
    )
    subnets = synth.resources(config.app_stack_name, "AWS::EC2::Subnet").values()
    zones = sorted(s["Properties"]["AvailabilityZone"] for s in subnets)
    assert zones == sorted(cached[key][:2])


def test_stacks_have_a_fixed_environment(synth, config):
    for name, artifact in synth.manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            assert artifact["environment"] == f"aws://{config.account}/{config.region}", name


def test_templates_written_to_outdir(synth, app_name, base_name):
    for name in (app_name, base_name):
        assert (synth.outdir / f"{name}.template.json").is_file()


def test_templates_match_the_snapshots(synth):
    """Logical IDs and properties as committed: a refactoring that renamed a resource would
    replace it on deploy. After a change that is meant, `make infra-snapshot` and review the
    snapshot's diff."""
    for name in synth.templates:
        path = snapshot_path(name)
        assert path.is_file(), f"no snapshot of {name}: run `make infra-snapshot`"
        expected = json.loads(path.read_text())
        # From the file: other tests may edit the session's parsed templates.
        actual = normalise(json.loads((synth.outdir / f"{name}.template.json").read_text()))
        for section in sorted(set(expected) | set(actual)):
            want, got = expected.get(section, {}), actual.get(section, {})
            if isinstance(want, dict) and isinstance(got, dict):
                assert sorted(got) == sorted(want), f"{name} {section}: logical IDs differ"
                for key in want:
                    assert got[key] == want[key], f"{name} {section}/{key} differs"
            else:
                assert got == want, f"{name} {section} differs"
