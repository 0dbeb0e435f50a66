"""A label table as a task: the :class:`TaskSpec` of an opened :class:`~pa_geo.tables.LabelTable`.

Level and type decide everything else (``pa-geo fit --data.table.path labels.csv --data.table.level residue
--data.table.type multiclass``):

==========  ==========================  ======================================  ====================
table       spec (input_kind, level)    metrics (first = model selection)       loss
==========  ==========================  ======================================  ====================
protein     structure|sequence, graph   regression: spearman, pearson, mae,     regression: MSE on
residue     structure|sequence, node      rmse (residue level: pearson first:     standardised targets
pair        pair, graph                   Spearman keeps every residue)         binary: BCE
                                        binary: auroc, accuracy, auprc, mcc     multiclass: cross-
                                        multiclass: accuracy, accuracy_macro,     entropy
                                          f1_macro                              multilabel: BCE
                                        multilabel: fmax, auprc_micro
==========  ==========================  ======================================  ====================

The spec's ``options`` carry what prediction needs without the table: ``table`` (settings), ``class_names``,
``has_structures``, ``label_columns``; ``data_files`` fingerprints the table and the files it names (example-store
key). The spec is not registered by name: the data module that opened the table holds it, and the model gets it as
plain values (``model.task_spec``, :func:`pa_geo.tasks.spec.spec_record`), so a checkpoint rebuilds the task without
the table.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError
from pa_geo.tables.label_table import LabelTable
from pa_geo.tables.settings import TableSettings
from pa_geo.tasks.spec import TaskSpec

TABLE_SPLITS = ["train", "valid", "test"]
LEVEL_OF = {"protein": "graph", "residue": "node", "pair": "graph"}
METRICS_BY_TYPE: dict[str, list[str]] = {
    "regression": ["spearman", "pearson", "mae", "rmse"],
    "binary": ["auroc", "accuracy", "auprc", "mcc"],
    "multiclass": ["accuracy", "accuracy_macro", "f1_macro"],
    "multilabel": ["fmax", "auprc_micro"],
}


def table_metrics(level: str, label_type: str) -> list[str]:
    """Metric names of a table task, the model-selection metric first."""
    metrics = list(METRICS_BY_TYPE[label_type])
    if level == "residue" and label_type == "regression":
        metrics.remove("pearson")
        metrics.insert(0, "pearson")
    return metrics


def input_kind_of(settings: TableSettings, has_structures: bool) -> str:
    """``pair`` for pair tables, else ``structure`` or ``sequence`` (whether the table names structure files)."""
    if settings.level == "pair":
        return "pair"
    return "structure" if has_structures else "sequence"


def table_task_spec(table: LabelTable, name: str = "table") -> TaskSpec:
    """The :class:`TaskSpec` of an opened ``table``; its loader yields the table's records (``root`` unused)."""
    s = table.settings
    if table.codec is None:
        raise DatasetError(f"{s.path}: opened without labels; a task needs its label columns")
    metrics = table_metrics(s.level, s.type)

    def load(root: Path, split: str) -> Iterable[TaskRecord | DatasetError]:
        return table.records(split)

    return TaskSpec(
        name=name, input_kind=input_kind_of(s, table.has_structures), level=LEVEL_OF[s.level],  # type: ignore[arg-type]
        label_type=s.type, num_outputs=table.codec.num_outputs, metrics=metrics, primary_metric=metrics[0],
        splits=list(TABLE_SPLITS), loader=load, source=str(s.path),
        description=f"{s.level}-level {s.type} labels from {Path(s.path).name}",
        options={"table": settings_record(s), "class_names": table.codec.class_names,
                 "has_structures": table.has_structures, "label_columns": list(s.label_columns),
                 "data_files": table.fingerprint()})


def settings_record(settings: TableSettings) -> dict[str, Any]:
    """A table's settings as plain values (``spec.options["table"]``; compared to reuse an opened table)."""
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    out["split_fractions"] = list(settings.split_fractions)
    return out
