"""``make run``: the local stack in the foreground, supervised until SIGINT or SIGTERM.

Started as ``python -m shared.dev.devstack`` (the Makefile's ``run`` target); devstack.py hands
its ``__main__`` to ``main()`` here.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from shared.config.settings import Settings
from shared.dev.devstack import DISTINCT, ROOT, Stack

ROLL_EVERY_S = 3600.0


def _caught_signals(pid: int) -> int:
    """The mask of signals a process handles (Linux /proc); 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def _parent_is_stopping(parent: int, caught_at_start: int) -> bool:
    """GNU make forwards SIGTERM to us but not a SIGINT sent to make's pid alone: it resets its
    handler to the default and waits for us. A handler that disappeared means make was told to
    stop (SIGINT, SIGHUP or SIGQUIT), so we stop too instead of leaving make waiting forever."""
    watched = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGQUIT - 1))
    lost = caught_at_start & ~_caught_signals(parent) & watched
    return os.getppid() != parent or bool(lost)


def main() -> int:
    """Start everything, print the URL, stop everything on SIGINT/SIGTERM."""
    settings = Settings.from_env()
    if DISTINCT not in os.environ:
        print(
            f"privacy: every report counts towards PRIVACY_MIN_REPORTS ({DISTINCT}=false: a "
            "local stack's reports all come from one address); set it to true to count "
            "distinct submitters as deployments do",
            flush=True,
        )
    run_dir = ROOT / ".run"
    data_dir = (ROOT / settings.data_dir) if settings.data_dir else None
    stack = Stack(run_dir, port=settings.port, data_dir=data_dir)
    stopping = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    parent = os.getppid()
    parent_caught = _caught_signals(parent)
    print(f"starting: emulator on {stack.moto_url}, logs in {run_dir}/", flush=True)
    if data_dir is not None:
        print(f"data kept in {data_dir}/ (`make reset` wipes it)", flush=True)
    try:
        stack.start(workers=1)
        stack.write_state(run_dir / "stack.json")
        print(f"SafetyHeatmap is running at {stack.url}/  (Ctrl-C stops it)", flush=True)
        control = run_dir / "control.json"
        control.unlink(missing_ok=True)
        next_roll = 0.0
        while not stopping["now"]:
            if _parent_is_stopping(parent, parent_caught):
                break
            if time.monotonic() >= next_roll:
                # The local stand-in for the EventBridge schedule: windows roll hourly.
                stack.send_roll_windows()
                next_roll = time.monotonic() + ROLL_EVERY_S
            if stack.apply_control(control):
                stack.write_state(run_dir / "stack.json")
            _supervise(stack, run_dir, stopping)
            time.sleep(0.2)
    finally:
        print("stopping...", flush=True)
        stack.stop()
        (run_dir / "stack.json").unlink(missing_ok=True)
        print("stopped", flush=True)
    return 0


def _supervise(stack: Stack, run_dir: Path, stopping: dict[str, bool]) -> None:
    """Workers are replaced as ECS would replace a crashed task; any other exit stops all."""
    for proc in list(stack.procs):
        if proc.popen.poll() is None:
            continue
        print(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}", flush=True)
        if proc.name.startswith("worker"):
            stack.procs.remove(proc)
            stack.start_worker()
            stack.write_state(run_dir / "stack.json")
        else:
            stopping["now"] = True
