"""The tasks the shipped models were trained on: 8-state DSSP (primary) + relative solvent accessibility (auxiliary)
per residue of real StructureDB chains, on full backbones or on CA traces.

A task's data root is a folder (``scripts/train_pretrained.py`` writes it) holding ``structuredb.npz`` (the
StructureDB export, :mod:`pa_geo.formats.structuredb`) and ``split.csv`` (a split file of
:mod:`pa_geo.tables.similarity_split`: ``id,split,group`` rows; chains it does not list are not used). Labels:
DSSP letters H G I E B T S C as classes 0..7 (named by the letters), RSA = SASA / Tien et al. 2013 max ASA, clipped
to [0, 1.5] (as the demo's). The CA-trace tasks read every chain as its CA trace (:func:`pa_geo.io.traces.ca_trace`).

The specs carry what prediction needs (``TaskSpec.options``, stored in every checkpoint): the class names, the
prediction column names (``ss8``, ``rsa``), the 3-state reduction written beside the 8-state letter (``ss3``) and
what the structures were (``structure_input``: ``backbone`` or ``ca_trace``; see
:mod:`pa_geo.train.predict_inputs`). They are registered by :func:`register_training_tasks` (the training script
calls it), never by importing pa_geo: a shipped checkpoint rebuilds them from its own copy.
"""
from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

from pa_geo.datasets.records import TaskRecord
from pa_geo.demo.tasks import SS8_CLASSES, dssp8_labels
from pa_geo.errors import DatasetError
from pa_geo.formats.structuredb import SS3_CLASSES, load_structuredb
from pa_geo.io.traces import ca_trace
from pa_geo.tables.similarity_split import read_split_file
from pa_geo.tasks import register_task
from pa_geo.tasks.custom_metrics import dssp_three_state
from pa_geo.tasks.spec import TaskSpec

CHAINS_FILE = "structuredb.npz"
SPLIT_FILE = "split.csv"
SPLITS = ["train", "valid", "test"]
# H G I -> H; E B -> E; T S C -> C (pa_geo.tasks.custom_metrics.dssp_three_state, the q3 metric's map)
SS3_OF_SS8: dict[str, str] = {c: SS3_CLASSES[k] for c, k in zip(SS8_CLASSES, dssp_three_state(SS8_CLASSES))}
SS8_METRICS = ["accuracy", "accuracy_macro", "q3"]
RSA_METRICS = ["pearson", "spearman", "mae", "rmse"]
# input kind -> (8-state task, RSA task)
TASK_NAMES: dict[str, tuple[str, str]] = {"backbone": ("structuredb_ss8", "structuredb_rsa"),
                                          "ca_trace": ("structuredb_ss8_ca", "structuredb_rsa_ca")}


@lru_cache(maxsize=2)
def _chains(root: str, stamp: tuple[float, float]) -> tuple[dict, dict[str, list[int]]]:
    folder = Path(root)
    for name in (CHAINS_FILE, SPLIT_FILE):
        if not (folder / name).is_file():
            raise DatasetError(f"{folder}: no {name} (scripts/train_pretrained.py writes this folder)")
    records = load_structuredb(folder / CHAINS_FILE)
    assignment, _ = read_split_file(folder / SPLIT_FILE)
    index = {r.protein.id: i for i, r in enumerate(records)}
    missing = [i for i in assignment if i not in index]
    if missing:
        raise DatasetError(f"{folder / SPLIT_FILE}: {len(missing)} id(s) not in {CHAINS_FILE} (first {missing[0]})")
    splits: dict[str, list[int]] = {s: [] for s in SPLITS}
    for rid, split in assignment.items():
        splits[split].append(index[rid])
    return {i: records[i] for idx in splits.values() for i in idx}, {s: sorted(v) for s, v in splits.items()}


def _stamp(root: Path) -> tuple[float, float]:
    return tuple(float((root / n).stat().st_mtime) if (root / n).exists() else -1.0  # type: ignore[return-value]
                 for n in (CHAINS_FILE, SPLIT_FILE))


def _loader(field: str, trace: bool, root: Path, split: str) -> list[TaskRecord]:
    records, splits = _chains(str(Path(root).resolve()), _stamp(Path(root)))
    out = []
    for i in splits[split]:
        r = records[i]
        protein = ca_trace(r.protein) if trace else r.protein
        label = dssp8_labels(r.protein.id, r.dssp8) if field == "ss8" else r.rsa.copy()
        out.append(TaskRecord(r.protein.id, [protein], label))
    return out


def training_tasks(input_kind: str) -> tuple[TaskSpec, TaskSpec]:
    """``(8-state DSSP task, RSA task)`` of ``input_kind`` (``backbone``: N, CA, C, O; ``ca_trace``)."""
    ss8_name, rsa_name = TASK_NAMES[input_kind]
    trace = input_kind == "ca_trace"
    what = "CA traces" if trace else "full backbones"
    ss8 = TaskSpec(ss8_name, "structure", "node", "multiclass", 8, list(SS8_METRICS), "accuracy", list(SPLITS),
                   loader=partial(_loader, "ss8", trace), source="ProMod3 StructureDB (Apache-2.0), PDB (CC0)",
                   description=f"8-state DSSP per residue (H G I E B T S C) from {what} of StructureDB chains",
                   options={"class_names": list(SS8_CLASSES), "prediction_column": "ss8",
                            "derived_columns": {"ss3": dict(SS3_OF_SS8)}, "structure_input": input_kind})
    rsa = TaskSpec(rsa_name, "structure", "node", "regression", 1, list(RSA_METRICS), "pearson", list(SPLITS),
                   loader=partial(_loader, "rsa", trace), source="ProMod3 StructureDB (Apache-2.0), PDB (CC0)",
                   description=f"relative solvent accessibility per residue (SASA / Tien 2013 max ASA) from {what}",
                   options={"prediction_column": "rsa", "structure_input": input_kind})
    return ss8, rsa


def register_training_tasks() -> None:
    """Register the four tasks of :data:`TASK_NAMES` (idempotent)."""
    for kind in TASK_NAMES:
        for spec in training_tasks(kind):
            register_task(spec, overwrite=True)
