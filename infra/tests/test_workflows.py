"""CI and deploy workflows: what actionlint cannot know (OIDC only, approval, consistency)."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def _load(name):
    # PyYAML reads the key `on` as True.
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


@pytest.fixture(scope="module")
def ci():
    return _load("ci.yml")


@pytest.fixture(scope="module")
def deploy():
    return _load("deploy.yml")


def _runs(job):
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_ci_lints_tests_and_synths_on_push_and_pull_request(ci):
    assert {"push", "pull_request"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    runs = _runs(job)
    for command in ("make lint", "make test", "make synth"):
        assert command in runs
    assert ci["permissions"] == {"contents": "read"}


def test_deploy_runs_on_main_after_ci(deploy):
    trigger = deploy["on"]["workflow_run"]
    assert trigger["workflows"] == ["ci"] and trigger["branches"] == ["main"]
    assert "refs/heads/main" in deploy["jobs"]["prepare"]["if"]
    assert deploy["permissions"] == {"contents": "read"}


def test_no_stored_aws_keys_only_oidc(deploy):
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "secrets." not in text
    for name, job in deploy["jobs"].items():
        uses_aws = any(
            step.get("uses", "").startswith("aws-actions/configure-aws-credentials")
            for step in job["steps"]
        )
        if uses_aws:
            assert job["permissions"]["id-token"] == "write", name


def test_images_are_built_and_tagged_by_commit(deploy):
    build = deploy["jobs"]["build"]
    dockerfiles = {entry["dockerfile"] for entry in build["strategy"]["matrix"]["include"]}
    assert dockerfiles == {"Dockerfile.web", "Dockerfile.worker"}
    runs = _runs(build)
    assert "docker push" in runs and ":${TAG}" in runs
    assert "tag=$HEAD_SHA" in (REPO / "infra/scripts/plan-deploy.sh").read_text()


def test_infrastructure_changes_wait_for_the_environment_approval(deploy, config):
    infra = deploy["jobs"]["infra"]
    assert infra["environment"] == config.github_infra_environment
    assert "cdk deploy" in _runs(infra)
    assert "AWS_INFRA_ROLE_ARN" in str(infra["steps"])
    for name, job in deploy["jobs"].items():
        if name != "infra":
            assert "cdk deploy" not in _runs(job), name
            assert "AWS_INFRA_ROLE_ARN" not in str(job["steps"]), name


def test_both_services_are_deployed_and_awaited(deploy):
    runs = _runs(deploy["jobs"]["deploy"])
    assert '"$WEB_SERVICE" web' in runs and '"$WORKER_SERVICE" worker' in runs
    script = (REPO / "infra/scripts/deploy-service.sh").read_text()
    assert "aws ecs wait services-stable" in script


def test_workflow_names_match_the_stacks(deploy, config):
    env = deploy["env"]
    assert env["CLUSTER"] == config.cluster_name
    assert env["WEB_SERVICE"] == config.web_service_name
    assert env["WORKER_SERVICE"] == config.worker_service_name
    assert env["APP_STACK"] == config.app_stack_name
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["CDK_CLI_VERSION"])
    repositories = {
        e["repository"] for e in deploy["jobs"]["build"]["strategy"]["matrix"]["include"]
    }
    assert repositories == {config.web_repository_name, config.worker_repository_name}


def test_rollback_is_a_manual_run_with_an_old_tag(deploy):
    assert "image_tag" in deploy["on"]["workflow_dispatch"]["inputs"]


def _evaluate(condition, needs):
    """Evaluates a job's `if:` the way Actions would, for the few operators deploy.yml uses."""
    expr = condition.replace("always()", "True").replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"contains\(fromJSON\('(\[.*?\])'\), ", r"__in(\1, ", expr)
    expr = re.sub(
        r"needs\.([\w-]+)\.(result|outputs\.[\w-]+)",
        lambda m: repr(needs[m.group(1)][m.group(2)]),
        expr,
    )
    return eval(expr, {"__builtins__": {}, "__in": lambda items, x: x in items})  # noqa: S307


@pytest.mark.parametrize(
    ("planned_infra", "build", "diff", "infra", "runs"),
    [
        ("false", "success", "skipped", "skipped", True),  # image-only change
        ("false", "skipped", "skipped", "skipped", True),  # rollback to an existing tag
        ("true", "success", "success", "success", True),  # infra approved and deployed
        ("true", "success", "failure", "skipped", False),  # a failed diff skips infra
        ("true", "success", "success", "failure", False),
        ("true", "success", "success", "cancelled", False),  # approval rejected or timed out
        ("false", "failure", "skipped", "skipped", False),
    ],
)
def test_services_deploy_only_after_the_planned_infrastructure(
    deploy, planned_infra, build, diff, infra, runs
):
    job = deploy["jobs"]["deploy"]
    assert set(job["needs"]) >= {"prepare", "build", "diff", "infra"}
    needs = {
        "prepare": {"result": "success", "outputs.infra": planned_infra},
        "build": {"result": build},
        "diff": {"result": diff},
        "infra": {"result": infra},
    }
    assert _evaluate(job["if"], needs) is runs
