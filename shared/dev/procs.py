"""The local stack's child processes: a free port, waiting for a process to answer, its log.

A start waits, with a deadline, until the process answers (or says it is ready); a process
that dies early fails the start with the tail of its log instead of a bare timeout.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class StartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StartError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise StartError(f"{what} did not come up within {timeout:.0f}s:\n{_tail(log)}")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    log_start: int = 0
    """Size of the log when this process started: logs are appended to across runs, and an
    earlier run's "ready." must not pass for this one's (it once let `make run` print the URL
    before its worker had started)."""

    def output(self) -> str:
        """What this process has written to its log so far."""
        with self.log.open("rb") as fh:
            fh.seek(self.log_start)
            return fh.read().decode(errors="replace")
