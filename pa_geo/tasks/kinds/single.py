"""Kinds over one protein: ``protein`` (graph-level label), ``residue`` (per-node labels), ``contact`` (residue
pairs within the protein)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError
from pa_geo.graphs.schema import ATOM_NAME_INDEX
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.tasks.kinds.base import StepOutputs, TaskKind
from pa_geo.tasks.kinds.data import ContactData, ProteinData, ResidueData, TaskData
from pa_geo.tasks.kinds.labels import bad_record, encode_graph_label, encode_node_label, node_labels_on_graph
from pa_geo.tasks.kinds.rows import node_rows, pair_rows


class ProteinKind(TaskKind):
    """One protein -> one label (fluorescence, fold, solubility, PSR, ...): ``head(encoder(batch)) [B, C]``.

    A task whose label belongs to one marked residue of the graph (ATOM3D RES: the residue at the centre of an
    environment, ``spec.options["center_key"]``) stores that residue's node as ``center_index [1]`` (its CA on an
    atom graph, as gvp-pytorch's ``RESDataset`` ``ca_idx``); the head then reads the encoder's node features there
    (``EncoderOutput.graph`` replaced by ``node[center_index]``), as gvp-pytorch's RES model does.
    """

    name = "protein"
    data_class = ProteinData
    head_inputs = ("graph",)

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        data.y = encode_graph_label(self.spec, record)
        if self.spec.options.get("center_key"):
            data.center_index = torch.tensor([center_node(self.spec, data, record)], dtype=torch.long)

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        out = encoder(batch)
        if "center_index" in batch:
            if encoder.node_dim != encoder.graph_dim:
                raise ConfigError(f"task {self.spec.name!r} reads the encoder's node features at the marked residue: "
                                  f"its node_dim ({encoder.node_dim}) must equal graph_dim ({encoder.graph_dim})")
            out = EncoderOutput(graph=out.node[batch.center_index], node=out.node, batch=out.batch)
        return head(out)


def center_node(spec: Any, data: TaskData, record: TaskRecord) -> int:
    """Node of ``record.extra["center_index"]`` (a residue index) in the example's graph: the residue's node on a
    residue graph; its CA atom (else its first atom) on an atom graph."""
    residue = record.extra.get("center_index")
    if not isinstance(residue, (int, np.integer)):
        raise bad_record(spec, record, "needs extra['center_index'] (the marked residue)")
    if "atom2residue" not in data:
        if not 0 <= int(residue) < data.num_nodes:
            raise bad_record(spec, record, f"center residue {residue} outside the graph's {data.num_nodes} nodes")
        return int(residue)
    atoms = torch.nonzero(data.atom2residue == int(residue)).flatten()
    if atoms.numel() == 0:
        raise bad_record(spec, record, f"center residue {residue} has no atom in the graph")
    ca = atoms[data.atom_name_type[atoms] == ATOM_NAME_INDEX["CA"]]
    return int((ca if ca.numel() else atoms)[0])


class ResidueKind(TaskKind):
    """One protein -> a label per residue (secondary structure, RES, RSA): ``[N, C]`` against ``node_y`` where
    ``node_y_mask``. On atom graphs every atom carries its residue's label (``atom2residue``)."""

    name = "residue"
    data_class = ResidueData
    head_inputs = ("node",)

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        y, mask = encode_node_label(self.spec, record, len(record.proteins[0]))
        data.node_y, data.node_y_mask = node_labels_on_graph(data, y, mask)

    def outputs(self, batch: Batch, out: Any) -> StepOutputs:
        # batch: node -> protein, for per-protein metrics (PEER's macro_acc)
        return StepOutputs(out, batch.node_y, batch.node_y_mask, {**self.metric_kwargs(batch), "batch": batch.batch})

    def prediction_frame(self, batch: Batch, out: Any) -> pd.DataFrame:
        return node_rows(self.spec, list(batch.record_id), out, batch.batch, batch.ptr,
                         batch.get("residue_number"))


def pair_keys(pairs: Tensor, num_nodes: int) -> Tensor:
    """``[2, P]`` node pairs -> ``[P]`` int64 keys ``i * num_nodes + j`` (for membership tests)."""
    return pairs[0].long() * int(num_nodes) + pairs[1].long()


class ContactKind(TaskKind):
    """One protein -> residue-residue contacts. The record's label is an ``[L, L]`` bool map (``label_mask [L]``:
    labelled residues); the example stores the true pairs i < j as ``contact_index`` (offset like ``edge_index``).
    The head scores pairs (``ContactHead``: all i < j with j - i >= min_separation); a pair's target is whether it
    is a stored contact, its mask whether both residues are labelled."""

    name = "contact"
    data_class = ContactData
    head_inputs = ("residue_pair",)

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        L = len(record.proteins[0])
        cmap = np.asarray(record.label)
        if cmap.shape != (L, L):
            raise bad_record(self.spec, record, f"contact map of shape {cmap.shape}, expected ({L}, {L})")
        if data.num_nodes != L:
            raise bad_record(self.spec, record, f"contacts need one node per residue, the graph has "
                                                f"{data.num_nodes} nodes for {L} residues")
        mask = np.ones(L, bool) if record.label_mask is None else np.asarray(record.label_mask, bool)
        if mask.shape != (L,):
            raise bad_record(self.spec, record, f"label_mask of shape {mask.shape}, expected ({L},)")
        i, j = np.nonzero(np.triu(cmap.astype(bool), 1))
        data.contact_index = torch.from_numpy(np.stack([i, j]).astype(np.int64)).reshape(2, -1)
        data.node_y_mask = torch.from_numpy(mask)

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        return head(encoder(batch), ptr=batch.ptr)

    def outputs(self, batch: Batch, out: Any) -> StepOutputs:
        logits, pairs = out
        n = int(batch.num_nodes)
        lo, hi = torch.minimum(pairs[0], pairs[1]), torch.maximum(pairs[0], pairs[1])
        target = torch.isin(pair_keys(torch.stack([lo, hi]), n), pair_keys(batch.contact_index, n)).float()
        mask = batch.node_y_mask[pairs[0]] & batch.node_y_mask[pairs[1]]
        return StepOutputs(logits, target, mask, {**self.metric_kwargs(batch), "pair_index": pairs,
                                                  "batch": batch.batch})

    def predict(self, out: Any, loss: nn.Module) -> Any:
        return out[0].detach(), out[1]

    def prediction_frame(self, batch: Batch, out: Any) -> pd.DataFrame:
        logits, pairs = out
        owner = batch.batch[pairs[0]]
        return pair_rows(list(batch.record_id), logits, pairs - batch.ptr[owner], owner)
