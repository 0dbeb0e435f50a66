"""Prediction rows (what ``predict`` writes): per protein, per residue or per residue pair."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from torch import Tensor

from pa_geo.tasks.spec import TaskSpec


def value_columns(spec: TaskSpec, out: Tensor) -> dict[str, list]:
    """Columns for rows of head outputs ``out`` ``[R, C]`` (already in label units for regression).

    multiclass: ``prediction`` (class index) + ``prob_<c>``; binary: ``prediction`` (0/1) + ``probability``;
    multilabel: ``prob_<t>``; regression: ``prediction`` (or ``prediction_<t>`` for T > 1 targets).
    """
    out = out.detach().float().cpu().reshape(out.shape[0], -1)
    cols: dict[str, list] = {}
    if spec.label_type == "multiclass":
        prob = out.softmax(-1)
        cols["prediction"] = prob.argmax(-1).tolist()
        for c in range(prob.shape[1]):
            cols[f"prob_{c}"] = prob[:, c].tolist()
    elif spec.label_type == "binary":
        prob = out[:, 0].sigmoid()
        cols["prediction"] = (prob >= 0.5).long().tolist()
        cols["probability"] = prob.tolist()
    elif spec.label_type == "multilabel":
        prob = out.sigmoid()
        for t in range(prob.shape[1]):
            cols[f"prob_{t}"] = prob[:, t].tolist()
    elif out.shape[1] == 1:
        cols["prediction"] = out[:, 0].tolist()
    else:
        for t in range(out.shape[1]):
            cols[f"prediction_{t}"] = out[:, t].tolist()
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
