"""No file of tests/, benchmarks/ or pa_geo/ edits ``sys.path`` (or adds a site dir): shared test helpers are
imported from :mod:`tests.helpers`, subprocess helpers run as ``python -m tests.helpers.<name>`` with
``tests.helpers.subprocess_env()``. Found by parsing every file, so lazy edits inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "benchmarks", "pa_geo")
MUTATORS = {"insert", "append", "extend", "remove", "pop", "clear", "__setitem__", "__iadd__"}


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) and \
        node.value.id == "sys"


def _target_is_sys_path(target: ast.AST) -> bool:
    if isinstance(target, ast.Subscript):  # sys.path[:0] = [...]
        target = target.value
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_target_is_sys_path(t) for t in target.elts)
    return _is_sys_path(target)


def sys_path_edits(source: str, filename: str = "<probe>") -> list[str]:
    """``"line: what"`` for each edit of ``sys.path`` in ``source``: a mutating call (``insert``, ``append``,
    ``extend``, ...), an assignment to it or a slice of it, ``+=``, ``from sys import path``, ``site.addsitedir``."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATORS and _is_sys_path(node.func.value):
                out.append((node.lineno, f"sys.path.{node.func.attr}(...)"))
            elif node.func.attr == "addsitedir":
                out.append((node.lineno, "addsitedir(...)"))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_target_is_sys_path(t) for t in targets):
                out.append((node.lineno, "assignment to sys.path"))
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            out.append((node.lineno, "from sys import path"))
    return [f"{line}: {what}" for line, what in sorted(out)]


def _files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO / d).rglob("*.py") if ".venv" not in p.parts)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_sys_path_edits(path: Path) -> None:
    edits = sys_path_edits(path.read_text(), str(path))
    assert not edits, f"{path.relative_to(REPO)} edits sys.path (import from tests.helpers instead): {edits}"


def test_the_checker_sees_every_kind_of_edit() -> None:
    probe = ("import sys, site\nsys.path.insert(0, 'a')\nsys.path.append('b')\nsys.path[:0] = ['c']\n"
             "sys.path += ['d']\nsys.path = []\ndef f():\n    sys.path.extend(['e'])\n    site.addsitedir('f')\n"
             "from sys import path\nx = sys.path[0]\nprint(sys.path)\nsys.modules['m'] = None\n")
    found = [e.split(": ", 1)[0] for e in sys_path_edits(probe)]
    assert found == ["2", "3", "4", "5", "6", "8", "9", "10"]


def test_the_scan_covers_tests_and_benchmarks() -> None:
    names = {str(p.relative_to(REPO)) for p in _files()}
    assert {"tests/test_no_sys_path.py", "benchmarks/fuzz.py", "tests/helpers/__init__.py"} <= names
