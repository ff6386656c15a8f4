"""The long commands' progress bar."""

from __future__ import annotations

import io

from shared.ops.progress import Progress


def test_progress_bar_writes_to_its_stream_in_tenths_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress("rebuild", 20, stream)
    for _ in range(20):
        bar.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("rebuild: 1/20") and lines[-1].startswith("rebuild: 20/20 (100%")
    assert len(lines) == 11
