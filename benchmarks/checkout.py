"""Importing this sibling module (``import checkout`` in a benchmark run as ``python benchmarks/<name>.py``) makes the
checkout's test helpers importable as ``tests.helpers``: the script's folder is on ``sys.path``, the repository root
is not, so the two packages are loaded by file location and entered in ``sys.modules``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _package(name: str, folder: Path) -> ModuleType:
    """The package ``name`` from ``folder/__init__.py`` (already imported: as it is)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_package("tests", REPO / "tests")
_package("tests.helpers", REPO / "tests" / "helpers")
