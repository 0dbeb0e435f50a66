"""Prediction rows (what ``predict`` writes): per protein, per residue or per residue pair."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from torch import Tensor

from pa_geo.tasks.spec import TaskSpec


def class_names(spec: TaskSpec) -> list[str]:
    """The task's class names (``spec.options["class_names"]``: a table task's names as written in its training
    table), else ``"0" .. "C-1"`` (binary: ``"0"``, ``"1"``)."""
    names = spec.options.get("class_names")
    if names:
        return [str(n) for n in names]
    return ["0", "1"] if spec.label_type == "binary" else [str(i) for i in range(spec.num_outputs)]


def value_columns(spec: TaskSpec, out: Tensor) -> dict[str, list]:
    """Columns for rows of head outputs ``out`` ``[R, C]`` (already in label units for regression).

    regression: ``prediction`` (or ``prediction_<label column>`` / ``prediction_<t>`` for T > 1 targets);
    classification: ``prediction`` = class name (:func:`class_names`) and ``prob_<class>`` per class (binary: the
    second class when p >= 0.5, ``prob_<first>`` = 1 - p; multiclass: softmax argmax; multilabel: ``;``-joined
    classes with p >= 0.5).
    """
    out = out.detach().float().cpu().reshape(out.shape[0], -1)
    if spec.label_type == "regression":
        if out.shape[1] == 1:
            return {"prediction": out[:, 0].tolist()}
        columns = spec.options.get("label_columns") or []
        labels = columns if len(columns) == out.shape[1] else [str(t) for t in range(out.shape[1])]
        return {f"prediction_{c}": out[:, t].tolist() for t, c in enumerate(labels)}
    names = class_names(spec)
    if spec.label_type == "binary":
        p = out[:, 0].sigmoid()
        probs = torch.stack([1 - p, p], dim=1)
        chosen = [names[k] for k in (p >= 0.5).long().tolist()]
    elif spec.label_type == "multiclass":
        probs = out.softmax(-1)
        chosen = [names[k] for k in probs.argmax(-1).tolist()]
    else:
        probs = out.sigmoid()
        chosen = [";".join(n for n, hit in zip(names, row) if hit) for row in (probs >= 0.5).tolist()]
    cols: dict[str, list] = {"prediction": chosen}
    for k, name in enumerate(names):
        cols[f"prob_{name}"] = probs[:, k].tolist()
    return cols


def graph_rows(spec: TaskSpec, ids: Sequence[str], out: Tensor) -> pd.DataFrame:
    """``out [B, C]`` -> columns ``id`` + values."""
    return pd.DataFrame({"id": list(ids), **value_columns(spec, out)})


def node_rows(spec: TaskSpec, ids: Sequence[str], out: Tensor, node_batch: Tensor, ptr: Tensor,
              residue_number: Tensor | None = None) -> pd.DataFrame:
    """``out [N, C]`` of nodes in graphs ``node_batch [N]`` (offsets ``ptr [B + 1]``) -> ``id, residue_index,
    residue_number`` + values."""
    nb = node_batch.cpu()
    index = torch.arange(nb.numel()) - ptr.cpu()[nb]
    frame: dict[str, list] = {"id": [ids[b] for b in nb.tolist()], "residue_index": index.tolist()}
    if residue_number is not None:
        frame["residue_number"] = residue_number.cpu().tolist()
    return pd.DataFrame({**frame, **value_columns(spec, out)})


def pair_rows(ids: Sequence[str], logits: Tensor, local_pairs: Tensor, owner: Tensor) -> pd.DataFrame:
    """Pair logits ``[P]`` of pairs ``local_pairs [2, P]`` (residue indices within their protein(s)) of examples
    ``owner [P]`` -> ``id, i, j, probability``."""
    prob = logits.detach().float().cpu().reshape(-1).sigmoid()
    return pd.DataFrame({"id": [ids[b] for b in owner.cpu().tolist()], "i": local_pairs[0].cpu().tolist(),
                         "j": local_pairs[1].cpu().tolist(), "probability": prob.tolist()})
