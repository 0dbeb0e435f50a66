"""Demo tasks on the data the package ships (``data/``): StructureDB DSSP / RSA on CA traces and solvnet solubility.

Why these tasks (README, "The demo"): the structure level is ProteinMPNN's CA-only encoder (``proteinmpnn_ca``) and
every structure task here reads CA traces only (:func:`ca_trace`: N, C and O removed before anything sees the
protein - encoders, graphs, baselines). DSSP assigns its 8 states (H G I E B T S C) from backbone hydrogen bonds
(N-H ... O=C energies), which a CA trace does not contain: the structure level sees the fold's CA geometry, the
sequence level (NEAR) sees residue identities and no coordinates, and neither reads the labels off its input.
Relative solvent accessibility (auxiliary) depends on side chains, which neither level sees. Their
``options["structure_input"]`` is ``"ca_trace"``: ``pa-geo predict`` with one of their checkpoints reduces every
input file to its CA trace too (:mod:`pa_geo.train.predict_inputs`), so a full-backbone file gives the model what it
learned from. Solubility is a
property of the sequence (two NEAR layers as the two levels).

Splits are deterministic train/valid/test (80/10/10) from :mod:`pa_geo.demo.data`: StructureDB chains grouped by
PDB entry, solubility sequences grouped by shared k-mers, seed 0; all 3,230 solubility sequences are used.
``root`` may be the repo's ``data/`` folder (or any folder holding ``structuredb_subset.npz`` / ``solubility.csv``);
a path to the file itself works too.
"""
from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from pa_geo.datasets.records import TaskRecord
from pa_geo.demo.data import split_solubility, split_structuredb
from pa_geo.demo.solubility import load_solubility
from pa_geo.errors import DatasetError
from pa_geo.formats.structuredb import SS3_CLASSES, load_structuredb
from pa_geo.io.traces import ca_trace
from pa_geo.tasks import register_task
from pa_geo.tasks.spec import TaskSpec

DEMO_SPLITS = ["train", "valid", "test"]
STRUCTUREDB_FILE = "structuredb_subset.npz"
SOLUBILITY_FILE = "solubility.csv"
SS8_CLASSES = "HGIEBTSC"  # DSSP: alpha, 3-10, pi helix; strand, bridge; turn, bend, coil


def _resolve(root: Path, filename: str) -> Path:
    root = Path(root)
    return root if root.is_file() else root / filename


def dssp8_labels(record_id: str, dssp8: str) -> np.ndarray:
    """``[L]`` int64 index of each DSSP letter in :data:`SS8_CLASSES`; another letter is a one-line
    :class:`DatasetError` naming the record."""
    table = np.full(128, -1, np.int64)
    table[np.frombuffer(SS8_CLASSES.encode(), np.uint8)] = np.arange(len(SS8_CLASSES))
    codes = np.frombuffer(dssp8.encode("ascii", "replace"), np.uint8)
    labels = table[np.minimum(codes, 127)]
    if (labels < 0).any():
        bad = sorted({dssp8[i] for i in np.flatnonzero(labels < 0)})
        raise DatasetError(f"{record_id}: DSSP letters {bad} are not among the 8 states {SS8_CLASSES}")
    return labels


@lru_cache(maxsize=2)
def _structuredb(path: str, mtime: float) -> tuple[list, dict]:
    records = load_structuredb(path)
    return records, split_structuredb([r.protein.id for r in records])


@lru_cache(maxsize=2)
def _solubility(path: str, mtime: float) -> tuple[list, dict]:
    records = load_solubility(path)
    return records, split_solubility([r.protein.id for r in records], [r.protein.sequence for r in records])


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else -1.0  # missing files: the dataset loader raises


def _label(field: str, record: object) -> np.ndarray:
    if field == "ss8":
        return dssp8_labels(record.protein.id, record.dssp8)
    return getattr(record, field).copy()


def _structuredb_loader(field: str, root: Path, split: str) -> list[TaskRecord]:
    path = _resolve(root, STRUCTUREDB_FILE)
    records, splits = _structuredb(str(path), _mtime(path))
    return [TaskRecord(records[i].protein.id, [ca_trace(records[i].protein)], _label(field, records[i]))
            for i in splits[split]]


def _solubility_loader(root: Path, split: str) -> list[TaskRecord]:
    path = _resolve(root, SOLUBILITY_FILE)
    records, splits = _solubility(str(path), _mtime(path))
    return [TaskRecord(records[i].protein.id, [records[i].protein], int(records[i].label)) for i in splits[split]]


DEMO_TASKS: list[TaskSpec] = [
    TaskSpec("demo_ss8", "structure", "node", "multiclass", 8, ["accuracy", "accuracy_macro", "q3"], "accuracy",
             list(DEMO_SPLITS), loader=partial(_structuredb_loader, "ss8"), source="pa_geo data/",
             description="8-state DSSP per residue (H G I E B T S C) from CA traces of shipped StructureDB chains; "
                         "q3: accuracy after H G I -> H, E B -> E, T S C -> C",
             options={"class_names": list(SS8_CLASSES), "structure_input": "ca_trace"}, reported_metrics=["q3"]),
    TaskSpec("demo_ss3", "structure", "node", "multiclass", 3, ["accuracy", "accuracy_macro"], "accuracy",
             list(DEMO_SPLITS), loader=partial(_structuredb_loader, "ss3"), source="pa_geo data/",
             description="3-state DSSP per residue (H E C) from CA traces of shipped StructureDB chains",
             options={"class_names": list(SS3_CLASSES), "structure_input": "ca_trace"}),
    TaskSpec("demo_rsa", "structure", "node", "regression", 1, ["pearson", "mae", "spearman", "rmse"], "pearson",
             list(DEMO_SPLITS), loader=partial(_structuredb_loader, "rsa"), source="pa_geo data/",
             description="relative solvent accessibility per residue (SASA / Tien 2013 max ASA) from CA traces",
             options={"structure_input": "ca_trace"}),
    TaskSpec("demo_solubility", "sequence", "graph", "binary", 1, ["accuracy", "auroc"], "accuracy",
             list(DEMO_SPLITS), loader=_solubility_loader, source="pa_geo data/",
             description="soluble (1) or not (0), all 3,230 solvnet sequences"),
]


def register_demo_tasks() -> None:
    """Register the demo tasks (idempotent; the ``pa_geo.tasks`` entry point of the package)."""
    for spec in DEMO_TASKS:
        register_task(spec, overwrite=True)
