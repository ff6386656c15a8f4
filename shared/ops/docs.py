"""Keep the README's settings table equal to the settings object (`make docs`; a test checks)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from shared.config.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"(<!-- settings:start -->\n).*?(<!-- settings:end -->)", re.S)


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {doc} |" for name, default, doc in Settings().describe()]
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + settings_table() + m.group(2), text)


def main() -> int:
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
