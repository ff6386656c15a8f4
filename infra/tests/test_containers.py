"""Dockerfiles, .dockerignore and compose.yaml, checked statically (no Docker engine here).

hadolint and `compose config -q` run in `make lint-containers`; these tests pin the promises
the issue makes that a linter does not check.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import REPO

DOCKERFILES = ["Dockerfile.web", "Dockerfile.worker"]
SLIM_311 = re.compile(r"^python:3\.11\.\d+-slim-[a-z]+$")


def _instructions(path):
    text = (REPO / path).read_text()
    text = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _stages(path):
    stages, current = [], None
    for line in _instructions(path):
        if line.upper().startswith("FROM "):
            current = [line]
            stages.append(current)
        elif current is not None:
            current.append(line)
    return stages


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_multi_stage_on_a_pinned_slim_python(dockerfile):
    stages = _stages(dockerfile)
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0].split()[1]
        assert SLIM_311.match(image), image


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dependencies_from_the_lock_as_wheels(dockerfile):
    build = " ".join(_stages(dockerfile)[0])
    assert "--require-hashes --requirement requirements/" in build
    assert "--only-binary=:all:" in build
    assert "pip wheel --no-deps --no-build-isolation" in build


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_final_stage_is_non_root_without_compilers_or_secrets(dockerfile):
    final = _stages(dockerfile)[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    text = " ".join(final).lower()
    for word in ("gcc", "build-essential", "apt-get install", "secret", "password", "token"):
        assert word not in text, word
    assert not any(line.startswith("ARG ") for line in final)
    assert any(line.startswith("COPY --from=build /opt/venv") for line in final)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entrypoints_are_exec_form(dockerfile):
    final = _stages(dockerfile)[-1]
    for keyword in ("ENTRYPOINT", "CMD"):
        (line,) = [line for line in final if line.startswith(keyword + " ")]
        assert isinstance(json.loads(line[len(keyword) + 1 :]), list), line


def test_web_runs_gunicorn_with_the_settings_config_and_has_a_healthcheck():
    final = _stages("Dockerfile.web")[-1]
    entry = json.loads(next(line for line in final if line.startswith("ENTRYPOINT "))[11:])
    cmd = json.loads(next(line for line in final if line.startswith("CMD "))[4:])
    assert entry[:1] == ["gunicorn"] and "python:web.gunicorn_conf" in entry
    assert cmd == ["web.wsgi:create()"]
    health = next(line for line in final if line.startswith("HEALTHCHECK "))
    assert "/healthz" in health and "CMD [" in health
    assert "SAFETYHEATMAP_HOST=0.0.0.0" in " ".join(final)


def test_worker_runs_celery_with_warm_shutdown():
    final = _stages("Dockerfile.worker")[-1]
    entry = json.loads(next(line for line in final if line.startswith("ENTRYPOINT "))[11:])
    cmd = json.loads(next(line for line in final if line.startswith("CMD "))[4:])
    assert entry == ["celery", "--app", "workers.celery_app"]
    assert cmd[0] == "worker" and "--loglevel=INFO" in cmd
    assert "STOPSIGNAL SIGTERM" in final


def test_dockerignore_is_an_allow_list():
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"requirements/web.txt", "requirements/worker.txt", "web", "workers"} <= allowed
    assert "shared" in allowed
    assert not allowed & {".git", ".venv", ".tools", "infra", ".github", "tests"}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_services_and_start_order(compose):
    services = compose["services"]
    assert set(services) == {"moto", "init", "web", "worker"}
    assert re.match(r"^motoserver/moto:\d+\.\d+\.\d+$", services["moto"]["image"])
    assert services["init"]["depends_on"]["moto"]["condition"] == "service_healthy"
    assert services["init"]["entrypoint"] == ["safetyheatmap", "init"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("moto", "web"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_compose_worker_can_scale(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["stop_signal"] == "SIGTERM"


def test_compose_talks_to_the_emulator_with_the_stack_names(compose, config):
    for name in ("init", "web", "worker"):
        env = compose["services"][name]["environment"]
        assert env["SAFETYHEATMAP_AWS_ENDPOINT_URL"] == "http://moto:5000"
        assert env["SAFETYHEATMAP_QUEUE_NAME"] == config.queue_name
        assert env["SAFETYHEATMAP_DLQ_NAME"] == config.dlq_name
        assert env["SAFETYHEATMAP_REPORTS_TABLE"] == config.reports_table_name
        assert env["SAFETYHEATMAP_GRIDS_TABLE"] == config.grids_table_name
    assert compose["services"]["web"]["environment"]["SAFETYHEATMAP_HOST"] == "0.0.0.0"  # noqa: S104
