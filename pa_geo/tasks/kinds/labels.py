"""Labels of a record encoded as the graph schema says (``y``, ``node_y`` / ``node_y_mask``); a label of the wrong
type, shape or range is a one-line :class:`DatasetError` naming the task and the record."""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError
from pa_geo.tasks.spec import TaskSpec


def bad_record(spec: TaskSpec, rec: TaskRecord, why: str) -> DatasetError:
    """``DatasetError("task <name> record <id>: <why>")``."""
    return DatasetError(f"task {spec.name} record {rec.id}: {why}")


def encode_graph_label(spec: TaskSpec, rec: TaskRecord) -> torch.Tensor:
    """Graph-level label -> ``[1]`` int64 (multiclass) or ``[1, T]`` float32 (regression / binary / multilabel)."""
    value = np.asarray(rec.label)
    if value.dtype == object or not np.issubdtype(value.dtype, np.number) and value.dtype != bool:
        raise bad_record(spec, rec, f"label {rec.label!r} is not numeric ({spec.label_type} task)")
    if spec.label_type == "multiclass":
        if value.size != 1 or not float(value.reshape(-1)[0]).is_integer():
            raise bad_record(spec, rec, f"multiclass label must be one integer class, got {rec.label!r}")
        c = int(value.reshape(-1)[0])
        if not 0 <= c < spec.num_outputs:
            raise bad_record(spec, rec, f"class {c} outside 0..{spec.num_outputs - 1}")
        return torch.tensor([c], dtype=torch.long)
    flat = value.astype(np.float32).reshape(1, -1)
    expected = spec.num_outputs
    if flat.shape[1] != expected:
        raise bad_record(spec, rec, f"label has {flat.shape[1]} values, task has {expected} outputs")
    if spec.label_type in ("binary", "multilabel") and not np.isin(flat, (0.0, 1.0)).all():
        raise bad_record(spec, rec, f"{spec.label_type} labels must be 0/1, got {rec.label!r}")
    if not np.isfinite(flat).all():
        raise bad_record(spec, rec, "label is not finite")
    return torch.from_numpy(flat)


def encode_node_label(spec: TaskSpec, rec: TaskRecord, num_residues: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue labels -> (``node_y`` [L] int64 (multiclass) or [L, T] float32, ``node_y_mask`` [L] bool)."""
    value = np.asarray(rec.label)
    if value.dtype == object or value.shape[:1] != (num_residues,):
        raise bad_record(spec, rec, f"node labels of shape {value.shape}, expected {num_residues} per-residue values")
    mask = np.ones(num_residues, bool) if rec.label_mask is None else np.asarray(rec.label_mask, bool)
    if mask.shape != (num_residues,):
        raise bad_record(spec, rec, f"label_mask of shape {mask.shape}, expected ({num_residues},)")
    if spec.label_type == "multiclass":
        if not np.issubdtype(value.dtype, np.integer):
            raise bad_record(spec, rec, f"multiclass node labels must be integers, got dtype {value.dtype}")
        bad = mask & ((value < 0) | (value >= spec.num_outputs))
        if bad.any():
            raise bad_record(spec, rec, f"class {int(value[bad][0])} outside 0..{spec.num_outputs - 1}")
        y = torch.from_numpy(np.where(mask, value, 0).astype(np.int64))
    else:
        y = torch.from_numpy(np.nan_to_num(value.astype(np.float32)).reshape(num_residues, -1))
        if y.shape[1] != spec.num_outputs:
            raise bad_record(spec, rec, f"node labels have {y.shape[1]} values per residue, task has "
                                        f"{spec.num_outputs}")
    return y, torch.from_numpy(mask)


def node_labels_on_graph(graph: Data, y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue labels onto the graph's nodes: identity for residue graphs, through ``atom2residue`` for atom graphs."""
    if "atom2residue" not in graph:
        return y, mask
    idx = graph.atom2residue
    return y[idx], mask[idx] & graph.atom_in_residue
