"""Rows of ``pa-geo predict --input``: one per protein (protein / pair level) or one per residue in chain order.

Columns: ``id``; residue level adds ``chain, residue_number, insertion_code, residue``; then ``prediction`` and,
for classification, ``prob_<class>`` per class, where classes are the task's ``class_names`` (a table task: the
names as written in the training table) or ``0 .. C-1``:

=============  ==========================================  ======================================
type           prediction                                  probabilities
=============  ==========================================  ======================================
regression     the value (``prediction_<column>`` per      --
               label column when there are several)
binary         the second class when p >= 0.5, else first   ``prob_<first>`` = 1 - p, ``prob_<second>`` = p
multiclass     the most probable class                      softmax, one column per class
multilabel     ``;``-joined classes with p >= 0.5           sigmoid, one column per class
=============  ==========================================  ======================================
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from pa_geo.tasks.spec import TaskSpec

PROB_DECIMALS = 4


def class_names(spec: TaskSpec) -> list[str]:
    """The task's class names (``spec.options["class_names"]``), or ``"0" .. "C-1"``; binary tasks have 2."""
    names = spec.options.get("class_names")
    if names:
        return [str(n) for n in names]
    return ["0", "1"] if spec.label_type == "binary" else [str(i) for i in range(spec.num_outputs)]


def value_columns(spec: TaskSpec, out: Tensor) -> dict[str, list]:
    """``prediction`` (+ ``prob_<class>``) columns of head outputs ``out [R, C]`` in label units."""
    out = out.detach().float().cpu().reshape(out.shape[0], -1)
    names = class_names(spec)
    if spec.label_type == "regression":
        columns = spec.options.get("label_columns") or []
        if out.shape[1] == 1:
            return {"prediction": out[:, 0].tolist()}
        labels = columns if len(columns) == out.shape[1] else [str(t) for t in range(out.shape[1])]
        return {f"prediction_{c}": out[:, t].tolist() for t, c in enumerate(labels)}
    if spec.label_type == "binary":
        p = out[:, 0].sigmoid()
        probs = torch.stack([1 - p, p], dim=1)
        chosen = [names[int(k)] for k in (p >= 0.5).long().tolist()]
    elif spec.label_type == "multiclass":
        probs = out.softmax(-1)
        chosen = [names[int(k)] for k in probs.argmax(-1).tolist()]
    else:
        probs = out.sigmoid()
        chosen = [";".join(n for n, hit in zip(names, row) if hit) for row in (probs >= 0.5).tolist()]
    cols: dict[str, list] = {"prediction": chosen}
    for k, name in enumerate(names):
        cols[f"prob_{name}"] = np.round(probs[:, k].numpy(), PROB_DECIMALS).tolist()
    return cols


def prediction_frame(spec: TaskSpec, kind: str, batch: Any, out: Tensor, records: dict[str, Any]) -> pd.DataFrame:
    """Rows of one predicted batch: per residue for the ``residue`` kind (residue graphs: node i = residue i of
    the record's protein), else per example. ``records`` maps record id -> the record (its proteins)."""
    ids = [str(i) for i in batch.record_id]
    if kind != "residue":
        return pd.DataFrame({"id": ids, **value_columns(spec, out)})
    if "atom2residue" in batch:
        raise NotImplementedError("per-residue predictions of atom-graph models are not written by pa-geo predict")
    ptr = batch.ptr.cpu().tolist()
    parts = []
    for b, rid in enumerate(ids):
        protein = records[rid].proteins[0]
        part = residue_columns(rid, protein)
        part.update(value_columns(spec, out[ptr[b]:ptr[b + 1]]))
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def residue_columns(record_id: str, protein: Any) -> dict[str, list]:
    """``id, chain, residue_number, insertion_code, residue`` of every residue of ``protein`` (file order)."""
    L = len(protein)
    return {"id": [record_id] * L, "chain": [str(c) for c in protein.chain_ids],
            "residue_number": [int(n) for n in protein.residue_numbers],
            "insertion_code": [str(c) for c in protein.insertion_codes], "residue": list(protein.sequence)}


def write_predictions(frames: Sequence[pd.DataFrame], path: Path) -> int:
    """Concatenate ``frames`` and write them to ``path`` atomically; returns the row count."""
    from pa_geo.train.predictions import write_csv_atomic

    frame = pd.concat(list(frames), ignore_index=True) if frames else pd.DataFrame({"id": []})
    write_csv_atomic(frame, path)
    return len(frame)
