"""TaskRecord -> TaskExample: build graphs, attach cached embeddings, encode labels as the graph schema says."""
from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from pa_geo.errors import ConfigError, DatasetError
from pa_geo.io.protein import Protein
from pa_geo.tasks.spec import TaskRecord, TaskSpec
from pa_geo.train.batch import TaskExample

GRAPH_KINDS = ("residue", "atom")


class GraphBuilder:
    """``Protein -> Data`` with a fixed recipe: ``kind`` (``residue`` | ``atom``) + the builder's keyword arguments.

    ``ligand`` (optional dict) holds the atom-graph keyword arguments used for ligands of protein-ligand tasks.
    """

    def __init__(self, kind: str = "residue", ligand: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if kind not in GRAPH_KINDS:
            raise ConfigError(f"unknown graph kind {kind!r}; expected one of {', '.join(GRAPH_KINDS)}")
        self.kind = kind
        self.kwargs = dict(kwargs)
        self.ligand_kwargs = dict(ligand or {})

    @property
    def function(self) -> Callable[..., Data]:
        """``residue_graph`` or ``atom_graph``."""
        from pa_geo import graphs

        return graphs.residue_graph if self.kind == "residue" else graphs.atom_graph

    def __call__(self, protein: Protein) -> Data:
        """The protein's graph (fields: ``pa_geo.graphs.schema``)."""
        return self.function(protein, **self.kwargs)

    def ligand(self, rec: TaskRecord) -> Data:
        """The ligand's graph: the atom graph of ``rec.ligand`` (a Protein holding an atom table only, ATOM3D LBA),
        else the bond graph of ``rec.extra["smiles"]`` (PEER PDBbind / BindingDB)."""
        from pa_geo import graphs
        from pa_geo.graphs.ligand import smiles_graph

        if rec.ligand is not None:
            return graphs.atom_graph(rec.ligand, **self.ligand_kwargs)
        smiles = rec.extra.get("smiles")
        if not isinstance(smiles, str):
            raise DatasetError(f"record {rec.id}: protein-ligand record has neither a ligand structure nor a SMILES")
        return smiles_graph(smiles, f"{rec.id}:ligand")


def _bad(spec: TaskSpec, rec: TaskRecord, why: str) -> DatasetError:
    return DatasetError(f"task {spec.name} record {rec.id}: {why}")


def encode_graph_label(spec: TaskSpec, rec: TaskRecord) -> torch.Tensor:
    """Graph-level label -> ``[1]`` int64 (multiclass) or ``[1, T]`` float32 (regression / binary / multilabel)."""
    value = np.asarray(rec.label)
    if value.dtype == object or not np.issubdtype(value.dtype, np.number) and value.dtype != bool:
        raise _bad(spec, rec, f"label {rec.label!r} is not numeric ({spec.label_type} task)")
    if spec.label_type == "multiclass":
        if value.size != 1 or not float(value.reshape(-1)[0]).is_integer():
            raise _bad(spec, rec, f"multiclass label must be one integer class, got {rec.label!r}")
        c = int(value.reshape(-1)[0])
        if not 0 <= c < spec.num_outputs:
            raise _bad(spec, rec, f"class {c} outside 0..{spec.num_outputs - 1}")
        return torch.tensor([c], dtype=torch.long)
    flat = value.astype(np.float32).reshape(1, -1)
    expected = spec.num_outputs
    if flat.shape[1] != expected:
        raise _bad(spec, rec, f"label has {flat.shape[1]} values, task has {expected} outputs")
    if spec.label_type in ("binary", "multilabel") and not np.isin(flat, (0.0, 1.0)).all():
        raise _bad(spec, rec, f"{spec.label_type} labels must be 0/1, got {rec.label!r}")
    if not np.isfinite(flat).all():
        raise _bad(spec, rec, "label is not finite")
    return torch.from_numpy(flat)


def encode_node_label(spec: TaskSpec, rec: TaskRecord, num_residues: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue labels -> (``node_y`` [L] int64 (multiclass) or [L, T] float32, ``node_y_mask`` [L] bool)."""
    value = np.asarray(rec.label)
    if value.dtype == object or value.shape[:1] != (num_residues,):
        raise _bad(spec, rec, f"node labels of shape {value.shape}, expected {num_residues} per-residue values")
    mask = np.ones(num_residues, bool) if rec.label_mask is None else np.asarray(rec.label_mask, bool)
    if mask.shape != (num_residues,):
        raise _bad(spec, rec, f"label_mask of shape {mask.shape}, expected ({num_residues},)")
    if spec.label_type == "multiclass":
        if not np.issubdtype(value.dtype, np.integer):
            raise _bad(spec, rec, f"multiclass node labels must be integers, got dtype {value.dtype}")
        bad = mask & ((value < 0) | (value >= spec.num_outputs))
        if bad.any():
            raise _bad(spec, rec, f"class {int(value[bad][0])} outside 0..{spec.num_outputs - 1}")
        y = torch.from_numpy(np.where(mask, value, 0).astype(np.int64))
    else:
        y = torch.from_numpy(np.nan_to_num(value.astype(np.float32)).reshape(num_residues, -1))
        if y.shape[1] != spec.num_outputs:
            raise _bad(spec, rec, f"node labels have {y.shape[1]} values per residue, task has {spec.num_outputs}")
    return y, torch.from_numpy(mask)


def _node_labels_on_graph(graph: Data, y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue labels onto the graph's nodes: identity for residue graphs, through ``atom2residue`` for atom graphs."""
    if "atom2residue" not in graph:
        return y, mask
    idx = graph.atom2residue
    return y[idx], mask[idx] & graph.atom_in_residue


def build_example(spec: TaskSpec, rec: TaskRecord, builder: GraphBuilder,
                  attach: Callable[[Data, Protein], Data],
                  graph_of: Callable[[Protein], Data] | None = None) -> TaskExample:
    """One record -> :class:`TaskExample` (graphs with embeddings and schema labels).

    ``graph_of(protein)`` returns a prebuilt graph (shared between records, never modified here: the example gets a
    shallow copy); default: ``builder(protein)``.
    """
    need = 2 if spec.input_kind in ("pair", "mutation") else 1
    if len(rec.proteins) != need:
        raise _bad(spec, rec, f"{len(rec.proteins)} proteins, a {spec.input_kind} task needs {need}")
    graphs: list[Data] = []
    for protein in rec.proteins:
        g = copy.copy(graph_of(protein)) if graph_of is not None else builder(protein)
        graphs.append(attach(g, protein))
    if spec.input_kind == "ligand":
        graphs.append(builder.ligand(rec))
    y = pair_y = pair_index = None
    if spec.level == "graph":
        y = encode_graph_label(spec, rec)
        if need == 1:
            graphs[0].y = y
    elif spec.level == "node":
        node_y, mask = encode_node_label(spec, rec, len(rec.proteins[0]))
        graphs[0].node_y, graphs[0].node_y_mask = _node_labels_on_graph(graphs[0], node_y, mask)
    elif need == 2:  # residue pairs across two proteins: labels [P] of extra["pair_index"] [2, P]
        pair_index, pair_y = _cross_pairs(spec, rec)
    else:  # residue pairs within one protein: a contact map
        L = len(rec.proteins[0])
        cmap = np.asarray(rec.label)
        if cmap.shape != (L, L):
            raise _bad(spec, rec, f"contact map of shape {cmap.shape}, expected ({L}, {L})")
        pair_y = torch.from_numpy(cmap.astype(bool))
        mask = np.ones(L, bool) if rec.label_mask is None else np.asarray(rec.label_mask, bool)
        graphs[0].node_y_mask = torch.from_numpy(mask)
    extra = {k: v for k, v in rec.extra.items() if isinstance(v, (str, int, float, bool))}
    return TaskExample(rec.id, graphs, y, pair_y, pair_index, extra)


def _cross_pairs(spec: TaskSpec, rec: TaskRecord) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pair_index [2, P] int64, labels [P] float32)`` of a two-protein residue-pair record."""
    index = np.asarray(rec.extra.get("pair_index"))
    label = np.asarray(rec.label)
    if index.ndim != 2 or index.shape[0] != 2 or label.shape != (index.shape[1],):
        raise _bad(spec, rec, f"expected extra['pair_index'] [2, P] and label [P], got {index.shape} and "
                              f"{label.shape}")
    la, lb = len(rec.proteins[0]), len(rec.proteins[1])
    if index.size and (index.min() < 0 or index[0].max() >= la or index[1].max() >= lb):
        raise _bad(spec, rec, f"pair_index outside the proteins' {la} and {lb} residues")
    if not np.isin(label, (0, 1)).all():
        raise _bad(spec, rec, "residue-pair labels must be 0/1")
    return torch.from_numpy(index.astype(np.int64)), torch.from_numpy(label.astype(np.float32))


def build_examples(spec: TaskSpec, records: Sequence[TaskRecord], builder: GraphBuilder,
                   attach: Callable[[Data, Protein], Data],
                   graph_of: Callable[[Protein], Data] | None = None) -> list[TaskExample]:
    """Every record of a split as a :class:`TaskExample`, in record order."""
    return [build_example(spec, rec, builder, attach, graph_of) for rec in records]
