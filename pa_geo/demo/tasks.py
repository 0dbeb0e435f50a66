"""Demo tasks on the data the package ships (``data/``): StructureDB SS3 / RSA and solvnet solubility.

Splits are deterministic train/valid/test (80/10/10) from :mod:`pa_geo.datasets.splits`: StructureDB chains grouped
by PDB entry, solubility sequences grouped by shared k-mers, seed 0. ``root`` may be the repo's ``data/`` folder
(or any folder holding ``structuredb_subset.npz`` / ``solubility.csv``); a path to the file itself works too.
"""
from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

from pa_geo.tasks.registry import register_task
from pa_geo.tasks.spec import TaskRecord, TaskSpec

DEMO_SPLITS = ["train", "valid", "test"]
STRUCTUREDB_FILE = "structuredb_subset.npz"
SOLUBILITY_FILE = "solubility.csv"


def _resolve(root: Path, filename: str) -> Path:
    root = Path(root)
    return root if root.is_file() else root / filename


@lru_cache(maxsize=2)
def _structuredb(path: str, mtime: float) -> tuple[list, dict]:
    from pa_geo.datasets.splits import split_structuredb
    from pa_geo.datasets.structuredb import load_structuredb

    records = load_structuredb(path)
    return records, split_structuredb([r.protein.id for r in records])


@lru_cache(maxsize=2)
def _solubility(path: str, mtime: float) -> tuple[list, dict]:
    from pa_geo.datasets.solubility import load_solubility
    from pa_geo.datasets.splits import split_solubility

    records = load_solubility(path)
    return records, split_solubility([r.protein.id for r in records], [r.protein.sequence for r in records])


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else -1.0  # missing files: the dataset loader raises


def _structuredb_loader(field: str, root: Path, split: str) -> list[TaskRecord]:
    path = _resolve(root, STRUCTUREDB_FILE)
    records, splits = _structuredb(str(path), _mtime(path))
    return [TaskRecord(records[i].protein.id, [records[i].protein], getattr(records[i], field).copy())
            for i in splits[split]]


def _solubility_loader(root: Path, split: str) -> list[TaskRecord]:
    path = _resolve(root, SOLUBILITY_FILE)
    records, splits = _solubility(str(path), _mtime(path))
    return [TaskRecord(records[i].protein.id, [records[i].protein], int(records[i].label)) for i in splits[split]]


DEMO_TASKS: list[TaskSpec] = [
    TaskSpec("demo_ss3", "structure", "node", "multiclass", 3, ["accuracy", "accuracy_macro"], "accuracy",
             list(DEMO_SPLITS), loader=partial(_structuredb_loader, "ss3"), source="pa_geo data/",
             description="3-state DSSP per residue (0 H, 1 E, 2 C) on shipped StructureDB chains"),
    TaskSpec("demo_rsa", "structure", "node", "regression", 1, ["pearson", "mae", "spearman", "rmse"], "pearson",
             list(DEMO_SPLITS), loader=partial(_structuredb_loader, "rsa"), source="pa_geo data/",
             description="relative solvent accessibility per residue (SASA / Tien 2013 max ASA)"),
    TaskSpec("demo_solubility", "sequence", "graph", "binary", 1, ["accuracy", "auroc"], "accuracy",
             list(DEMO_SPLITS), loader=_solubility_loader, source="pa_geo data/",
             description="soluble (1) or not (0), solvnet sequences"),
]


def register_demo_tasks() -> None:
    """Register the demo tasks (idempotent)."""
    for spec in DEMO_TASKS:
        register_task(spec, overwrite=True)
