"""The local stack's process bookkeeping."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.devstack import Stack


def test_a_process_sees_only_its_own_log_lines(tmp_path: Path) -> None:
    # Logs are appended across runs: an earlier worker's "ready." is not this one's.
    (tmp_path / "worker1.log").write_text("worker1@host ready.\n")
    stack = Stack(tmp_path)
    proc = stack._spawn("worker1", [sys.executable, "-c", "print('starting')"])
    assert proc.popen.wait(30) == 0
    assert proc.output() == "starting\n"
    assert " ready." in proc.log.read_text()
