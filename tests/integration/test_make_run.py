"""`make run` prints the URL, serves, and SIGINT or SIGTERM to make stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from shared.dev.devstack import free_port
from tests.support import poll

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.add(pid)
    return live


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_make_run_stops_everything_it_started(sig: signal.Signals) -> None:
    port = free_port()
    # Nothing kept: the checkout's .run/data is the developer's (tests' stacks start empty).
    env = {**os.environ, "SAFETYHEATMAP_PORT": str(port), "SAFETYHEATMAP_DATA_DIR": ""}
    # make installs its SIGINT handler only if SIGINT was not ignored when it started, and a
    # shell's background job (no job control) starts with it ignored: make would then ignore
    # the SIGINT below because of how this suite was launched. A handled signal is reset to
    # the default in the child, so handle it here while make starts.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert make.stdout is not None
        for line in make.stdout:
            if "running at" in line:
                assert f"http://127.0.0.1:{port}/" in line
                break
        else:
            pytest.fail("make run ended without printing the URL")
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        started = descendants(make.pid)
        assert len(started) >= 5  # devstack, moto, gunicorn master and workers, celery
        os.kill(make.pid, sig)  # make's pid alone, not its process group
        make.wait(60)
        poll(lambda: not alive(started), 30, "every started process gone")
    finally:
        if make.poll() is None:
            make.kill()
