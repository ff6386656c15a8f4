"""The layout a newcomer relies on: what imports what, where tests live, how big a file gets.

These are the rules docs/ARCHITECTURE.md states; a change that breaks one fails here rather than
in a review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("web", "workers", "shared")
MAX_LINES = 400


def python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_web_imports_nothing_from_the_workers_domain() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in imported_names(path) if n.split(".")[0] == "workers"
        )
        for path in python_files("web")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_loading_the_web_app_loads_no_worker_module() -> None:
    probe = (
        "import sys, web.app, web.wsgi\n"
        "bad = ('workers', 'shared.dev')\n"
        "print(' '.join(m for m in sys.modules if m.startswith(bad)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []


def test_production_code_imports_nothing_from_shared_dev() -> None:
    """shared/dev is left out of the images: only itself and the tests may use it."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in imported_names(path) if n.startswith("shared.dev")
        )
        for path in python_files("web", "workers", "shared")
        if "shared/dev" not in path.as_posix()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_or_test_file_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in python_files(*SOURCE, "tests")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_unit_tests_mirror_the_source_tree() -> None:
    """tests/unit/<package>/test_<module>.py, as in warehouse: each test folder names a package."""
    unit = ROOT / "tests" / "unit"
    folders = {
        p.relative_to(unit) for p in unit.rglob("*") if p.is_dir() and p.name != "__pycache__"
    }
    assert folders, "no unit test folders found"
    assert sorted(str(f) for f in folders if not (ROOT / f / "__init__.py").is_file()) == []
    stray = sorted(
        p.name
        for p in unit.glob("test_*.py")
        if p.name not in {"test_layout.py", "test_import_order.py", "test_packaging.py"}
    )
    assert stray == []


def test_the_architecture_module_table_lists_every_module() -> None:
    """docs/ARCHITECTURE.md's table is where a newcomer looks a module up: none may be missing,
    and none listed may be gone."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    rows = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    modules = {str(p.relative_to(ROOT)) for p in python_files(*SOURCE) if p.name != "__init__.py"}
    listed = {r for r in rows if r.endswith(".py") and r.split("/")[0] in SOURCE}
    assert sorted(modules - listed) == []
    assert sorted(listed - modules) == []
