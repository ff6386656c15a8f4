"""What the ops tests share: a `make run` stack's state file, as the stack writes it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_state(path: Path, workers: int, pid: int | None = None) -> None:
    path.write_text(
        json.dumps(
            {
                "url": "http://127.0.0.1:8123",
                "moto_url": "http://127.0.0.1:5999",
                "pid": pid or os.getpid(),
                "processes": {},
                "workers": workers,
            }
        )
    )
