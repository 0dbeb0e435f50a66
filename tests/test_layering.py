"""Layering (docs/ARCHITECTURE.md): a module imports only from its own layer and the layers before it. Every import
of every module counts: module level, inside functions, ``importlib.import_module("pa_geo....")`` with a literal."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "pa_geo"
LAYERS: dict[str, int] = {  # first package level under pa_geo -> layer (docs/ARCHITECTURE.md)
    "__init__": 0, "errors": 0, "registry": 0, "batching": 0, "io": 1, "graphs": 2, "backbones": 3, "cache": 4,
    "datasets": 5, "formats": 6, "nn": 7, "tasks": 8, "tables": 9, "train": 10, "demo": 11, "pretrained": 11, "cli": 12,
    "testing": 12,
}
# (importer, imported) package pairs allowed against the order, each with its reason
EXCEPTIONS = {("io", "formats"): "pa-geo inspect summarises ATOM3D LMDB folders (lazy import)"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every pa_geo import in a file (relative imports resolved against ``module``, by default
    the file's own dotted name)."""
    tree = ast.parse(path.read_text(), str(path))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out += [(node.lineno, name)] if node.module or node.level == 0 else [
                (node.lineno, f"{name}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, str(node.args[0].value)))
    return [(line, name) for line, name in out if name == "pa_geo" or name.startswith("pa_geo.")]


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer() -> None:
    stages = {p.stem if p.is_file() else p.name for p in PKG.iterdir() if not p.name.startswith(("_", "."))
              and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert stages <= set(LAYERS), stages - set(LAYERS)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: _module_name(p))
def test_imports_follow_the_layers(path: Path) -> None:
    here = _stage(_module_name(path))
    bad = []
    for line, name in imports_of(path):
        there = _stage(name)
        if LAYERS[there] > LAYERS[here] and (here, there) not in EXCEPTIONS:
            bad.append(f"{path.relative_to(PKG.parent)}:{line} imports {name} ({there}, layer {LAYERS[there]}) "
                       f"from {here} (layer {LAYERS[here]})")
    assert not bad, "\n".join(bad)


def test_the_architecture_document_lists_the_same_layers() -> None:
    """docs/ARCHITECTURE.md's layer table names every package of :data:`LAYERS` at its layer."""
    rows = [line.split("|") for line in (REPO / "docs" / "ARCHITECTURE.md").read_text().splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    documented = {name.strip("` ").split(".")[-1]: int(row[1]) for row in rows
                  for name in row[3].split(",") if name.strip().startswith("`pa_geo")}
    documented = {("__init__" if name == "pa_geo" else name): layer for name, layer in documented.items()}
    assert documented == {k: v for k, v in LAYERS.items() if k != "__init__"}, documented


def test_no_module_imports_pa_geo_testing() -> None:
    """``pa_geo.testing`` holds checks users run on their models; no pa_geo module imports it."""
    bad = [f"{path.relative_to(PKG.parent)}:{line} imports {name}" for path in sorted(PKG.rglob("*.py"))
           if _stage(_module_name(path)) != "testing"
           for line, name in imports_of(path) if _stage(name) == "testing"]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from pa_geo.train import cli\n    import importlib\n"
                     "    importlib.import_module('pa_geo.demo')\nfrom ..tasks import spec\nimport numpy\n")
    found = sorted(name for _, name in imports_of(probe, "pa_geo.nn.probe"))
    assert found == ["pa_geo.demo", "pa_geo.tasks", "pa_geo.train"]
