"""Prediction rows of every head: a multi-task model predicts its primary task and each auxiliary task of the same
kind (per residue with a per-residue primary, per protein with a per-protein one) in one row per residue / protein.

Columns, per task (each kind writes ``prediction`` / ``prediction_<t>``, ``prob_<class>``, ``probability``):

* the primary task's as the kind writes them; ``prediction`` becomes ``options["prediction_column"]`` when the
  task names one (``ss8``);
* an auxiliary task's after them, named by the task: ``prediction`` -> ``<column>``, ``prediction_<t>`` ->
  ``<column>_<t>``, any other value column ``c`` -> ``<column>_<c>``, where ``<column>`` is the task's
  ``options["prediction_column"]`` or its name (a regression head ``rsa`` writes one column ``rsa``);
* ``options["derived_columns"]`` ``{name: {class: coarser class}}`` adds a column right after the task's
  prediction column with each predicted class mapped (``ss3`` of an 8-state DSSP prediction); an auxiliary task's
  is ``<column>_<name>``.

The encoder runs once per batch for all heads (:class:`pa_geo.train.shared_batches.OncePerBatch`).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from pa_geo.tasks.spec import TaskSpec

KEY_COLUMNS = ("id", "residue_index", "residue_number", "i", "j")  # row keys the kinds write (not values)
COLUMN_OPTION = "prediction_column"
DERIVED_OPTION = "derived_columns"


def predicted_tasks(primary: str, kinds: dict[str, Any]) -> list[str]:
    """The primary task and every other task of ``kinds`` (``{task: TaskKind}``) of the primary's kind name."""
    return [primary] + [t for t, k in kinds.items() if t != primary and k.name == kinds[primary].name]


def column_name(spec: TaskSpec, primary: bool) -> str:
    """The name of a task's prediction column (see the module docstring)."""
    return str(spec.options.get(COLUMN_OPTION) or ("prediction" if primary else spec.name))


def task_columns(frame: pd.DataFrame, spec: TaskSpec, primary: bool) -> pd.DataFrame:
    """One task's rows with its value columns named and its derived columns added (module docstring)."""
    base = column_name(spec, primary)
    renamed = {}
    for c in frame.columns:
        if c in KEY_COLUMNS:
            continue
        if c == "prediction":
            renamed[c] = base
        elif c.startswith("prediction_"):
            renamed[c] = f"{base}_{c[len('prediction_'):]}"
        elif not primary:
            renamed[c] = f"{base}_{c}"
    out = frame.rename(columns=renamed)
    derived = spec.options.get(DERIVED_OPTION) or {}
    if base in out.columns:
        at = list(out.columns).index(base) + 1
        for k, (name, mapping) in enumerate(derived.items()):
            out.insert(at + k, name if primary else f"{base}_{name}", out[base].map(mapping))
    return out


def merge_task_frames(frames: dict[str, pd.DataFrame], specs: dict[str, TaskSpec], primary: str) -> pd.DataFrame:
    """The primary task's rows with the value columns of the other tasks' rows of the same batch (same rows, same
    order: the kinds make them from the same batch) after them."""
    merged = task_columns(frames[primary], specs[primary], primary=True)
    for task, frame in frames.items():
        if task == primary:
            continue
        if len(frame) != len(merged):
            raise ValueError(f"task {task}: {len(frame)} prediction rows for {len(merged)} of {primary}")
        values = task_columns(frame, specs[task], primary=False).drop(columns=[c for c in KEY_COLUMNS
                                                                               if c in frame.columns])
        merged = pd.concat([merged, values.set_axis(merged.index)], axis=1)
    return merged
