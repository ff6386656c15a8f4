"""What the production images get: the wheel, the build context and the runtime locks.

Each image installs its runtime lock (requirements/web.txt or worker.txt) and the wheel built
from the build context that .dockerignore lets through. The local stack (shared/dev: moto, its
fixes, the devstack) must reach neither, and the web image carries no Celery, kombu or pycurl:
the web writes Celery's task messages itself (shared/model/taskmsg.py). There is no Docker
engine here, so the Dockerfiles are read as text and .dockerignore with docker-py's matcher.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"Dockerfile.web": "web", "Dockerfile.worker": "worker"}
LOCKS = ("build", "web", "worker", "dev")
RUNTIME = ("web", "worker")
LOCAL_ONLY = ("shared/dev/", "tests/", "bench/")
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
PIP_WHEEL += ["--no-deps", "--no-build-isolation", "--no-index"]
DEV_TOOLS = {"moto", "pytest", "hypothesis", "schemathesis", "playwright", "docker", "ruff"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """``{name: (version, hashes)}`` of requirements/<lock>.txt."""
    text = (ROOT / "requirements" / f"{lock}.txt").read_text()
    entries = {}
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)\s*(.*)$", line)
        assert match, f"{lock}.txt: not an exact pin: {line[:80]}"
        name, version, rest = match.groups()
        entries[canonical(name)] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", rest))
    return entries


def pins(lock: str) -> dict[str, str]:
    return {name: version for name, (version, _) in lock_entries(lock).items()}


def instructions(dockerfile: str) -> list[str]:
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_copies(dockerfile: str) -> list[str]:
    """The build-context sources of every COPY/ADD (not ``--from`` another stage)."""
    sources = []
    for line in instructions(dockerfile):
        keyword, *args = line.split()
        if keyword.upper() not in {"COPY", "ADD"}:
            continue
        if any(arg.startswith("--from") for arg in args):
            continue
        sources += [arg.rstrip("/") for arg in args if not arg.startswith("--")][:-1]
    return sources


@pytest.fixture(scope="module")
def context() -> set[str]:
    """What `docker build .` sends: every path .dockerignore lets through."""
    text = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    return set(exclude_paths(str(ROOT), patterns))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel the images install, built offline with the venv's (locked) setuptools.

    From a copy of the sources, local stack and tests included, so the exclusion is tested and
    no stale build/ directory of the checkout can add files.
    """
    setuptools = importlib.metadata.version("setuptools")
    if int(setuptools.split(".")[0]) < 77:
        pytest.fail(f"setuptools {setuptools} in this venv, pyproject.toml needs 77+: make venv")
    src = tmp_path_factory.mktemp("src")
    shutil.copy2(ROOT / "pyproject.toml", src)
    for package in ("web", "workers", "shared", "tests", "bench"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(out), str(src)],
        check=True,
        timeout=120,
    )
    (path,) = out.glob("safetyheatmap-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_has_the_services_and_not_the_local_stack(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert not [name for name in names if name.startswith(LOCAL_ONLY)]
    for needed in ("web/wsgi.py", "web/gunicorn_conf.py", "workers/celery_app.py"):
        assert needed in names
    assert "shared/model/taskmsg.py" in names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "safetyheatmap = shared.ops.cli:main" in wheel.read(entry_points).decode()


def test_nothing_in_the_wheel_imports_the_local_stack(wheel: zipfile.ZipFile) -> None:
    importers = []
    for name in wheel.namelist():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(wheel.read(name), name)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            if any(m == "shared.dev" or m.startswith("shared.dev.") for m in modules):
                importers.append(name)
    assert importers == []


def test_a_checkout_still_imports_the_local_stack(tmp_path: Path) -> None:
    """The editable install maps the top-level packages, shared/dev included, from any cwd."""
    probe = "import importlib.util as u; print(u.find_spec('shared.dev.devstack').origin)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out) == ROOT / "shared" / "dev" / "devstack.py"


def test_the_build_context_leaves_out_the_local_stack(context: set[str]) -> None:
    assert not [path for path in context if path.startswith(LOCAL_ONLY)]
    assert not [path for path in context if path.split("/")[0] in {".git", ".venv", ".tools"}]
    assert "requirements/dev.txt" not in context
    assert {"shared/model/taskmsg.py", "web/wsgi.py", "workers/celery_app.py"} <= context


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_the_images_copy_only_what_the_context_has(dockerfile: str, context: set[str]) -> None:
    sources = context_copies(dockerfile)
    assert sources
    for source in sources:
        assert source not in {".", "*"}, f"{dockerfile}: COPY {source} takes the whole context"
        assert not (source + "/").startswith(LOCAL_ONLY), source
        # a source .dockerignore drops would fail the build: each one is in the context
        assert source in context or any(path.startswith(source + "/") for path in context)


@pytest.mark.parametrize(("dockerfile", "lock"), DOCKERFILES.items())
def test_each_image_installs_its_own_hashed_lock(dockerfile: str, lock: str) -> None:
    text = " ".join(instructions(dockerfile))
    assert f"--require-hashes --requirement requirements/{lock}.txt" in text
    assert "--require-hashes --requirement requirements/build.txt" in text
    others = {f"requirements/{name}.txt" for name in LOCKS} - {
        f"requirements/{lock}.txt",
        "requirements/build.txt",
    }
    assert not [other for other in others if other in text]
    assert "--no-build-isolation" in text  # the wheel is built with the locked setuptools


@pytest.mark.parametrize("lock", LOCKS)
def test_every_lock_pins_exact_versions_with_hashes(lock: str) -> None:
    entries = lock_entries(lock)
    assert entries
    assert not [name for name, (_, hashes) in entries.items() if not hashes]


def test_the_web_lock_has_no_celery_transport() -> None:
    assert not {"celery", "kombu", "pycurl"} & set(pins("web"))


@pytest.mark.parametrize("lock", RUNTIME)
def test_the_runtime_locks_have_no_dev_tools(lock: str) -> None:
    assert not DEV_TOOLS & set(pins(lock))


@pytest.mark.parametrize("lock", ("build", *RUNTIME))
def test_the_images_run_the_versions_the_tests_ran(lock: str) -> None:
    dev = pins("dev")
    assert {name: dev.get(name) for name in pins(lock)} == pins(lock)


# Run in a fresh interpreter: every module whose distribution is outside the allowed set fails
# to import (as in an image without it), so optional imports take their fallback and a needed
# one fails the probe. Prints the distributions the imports used.
ONLY_THE_LOCK = """
import importlib.abc, importlib.metadata, re, sys
allowed = set(sys.argv[1].split(","))
owners = importlib.metadata.packages_distributions()
used = set()
canon = lambda name: re.sub(r"[-_.]+", "-", name).lower()
class OnlyTheLock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        dists = {canon(d) for d in owners.get(name.partition(".")[0], [])}
        if dists and not dists & allowed:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        used.update(dists)
sys.meta_path.insert(0, OnlyTheLock())
exec(sys.argv[2])
print(" ".join(sorted(used)))
"""

ENTRY_IMPORTS = {
    # gunicorn's config module, the app factory and the default (gevent) worker class
    "web": "import runpy; runpy.run_path('web/gunicorn_conf.py'); import web.wsgi, "
    "web.pywsgi_worker",
    # the Celery app and its tasks, and the console script (compose's `safetyheatmap init`)
    "worker": "import workers.celery_app, workers.tasks, shared.ops.cli",
}


@pytest.mark.parametrize("lock", RUNTIME)
def test_each_service_imports_with_only_its_lock(lock: str) -> None:
    allowed = ",".join([*pins(lock), "safetyheatmap"])
    out = subprocess.run(
        [sys.executable, "-c", ONLY_THE_LOCK, allowed, ENTRY_IMPORTS[lock]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    used = set(out.stdout.split())
    if lock == "web":
        assert not {"celery", "kombu", "pycurl"} & used
    else:
        assert {"celery", "kombu", "boto3"} <= used
