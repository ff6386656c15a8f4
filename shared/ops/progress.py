"""The long commands' progress (redrive, rebuild, seed), on stderr so stdout stays the result."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def advance(self, n: int = 1) -> None:
        self.set(self.done + n, self.total)

    def set(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        fraction = done / total if total else 1.0
        elapsed = time.monotonic() - self.started
        if self._tty:
            bar = "#" * int(fraction * 30)
            self.stream.write(
                f"\r{self.label} [{bar:<30}] {done}/{total} {fraction:4.0%} {elapsed:5.1f}s"
            )
            if done >= total:
                self.stream.write("\n")
        elif int(fraction * 10) != self._last_tenth:
            self._last_tenth = int(fraction * 10)
            self.stream.write(f"{self.label}: {done}/{total} ({fraction:.0%}, {elapsed:.1f}s)\n")
        self.stream.flush()
