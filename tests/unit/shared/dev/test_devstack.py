"""The local stack's process bookkeeping."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from shared.dev.devstack import Stack


def test_a_process_sees_only_its_own_log_lines(tmp_path: Path) -> None:
    # Logs are appended across runs: an earlier worker's "ready." is not this one's.
    (tmp_path / "worker1.log").write_text("worker1@host ready.\n")
    stack = Stack(tmp_path)
    proc = stack._spawn("worker1", [sys.executable, "-c", "print('starting')"])
    assert proc.popen.wait(30) == 0
    assert proc.output() == "starting\n"
    assert " ready." in proc.log.read_text()


def test_a_reader_never_meets_the_state_file_half_written(tmp_path: Path) -> None:
    # `safetyheatmap scale` reads stack.json while the stack rewrites it after each change.
    stack = Stack(tmp_path)
    path = tmp_path / "stack.json"
    stack.write_state(path)
    done = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not done.is_set():
            seen.append(json.loads(path.read_text())["url"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(300):
            stack.write_state(path)
    finally:
        done.set()
        reader.join(10)
    assert seen and set(seen) == {stack.url}
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]
