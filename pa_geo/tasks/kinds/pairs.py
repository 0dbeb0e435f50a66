"""Kinds over two proteins (parts ``a`` and ``b`` of a :class:`~pa_geo.tasks.kinds.data.PairData`):
``protein_pair`` (one label per pair, e.g. PPI), ``mutation`` (wild type + mutant, e.g. MSP) and ``interface``
(labelled residue pairs across the two proteins, ATOM3D PPI)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from pa_geo.datasets.records import TaskRecord
from pa_geo.formats.atom3d_ppi import sample_ppi_pairs
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.tasks.kinds.base import GraphSource, StepOutputs, TaskKind
from pa_geo.tasks.kinds.data import PairData, TaskData
from pa_geo.tasks.kinds.labels import bad_record, encode_graph_label
from pa_geo.tasks.kinds.rows import pair_rows


class ProteinPairKind(TaskKind):
    """Proteins A and B -> one label: ``head(encoder(A), encoder(B)) [B, C]`` (``ProteinPairHead``)."""

    name = "protein_pair"
    data_class = PairData
    num_proteins = 2
    head_inputs = ("protein_pair",)

    def graph_parts(self, record: TaskRecord, graphs: GraphSource) -> dict:
        return {"a": graphs.protein(record.proteins[0]), "b": graphs.protein(record.proteins[1])}

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        data.y = encode_graph_label(self.spec, record)

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        views = self.views(batch)
        return head(encoder(views["a"]), encoder(views["b"]))


class MutationKind(ProteinPairKind):
    """Wild type (``a``) and mutant (``b``) -> one label (``MutationHead``: difference features)."""

    name = "mutation"
    head_inputs = ("mutation",)


def _owner_and_ptr(batch: Batch, part: str) -> tuple[Tensor, Tensor]:
    counts = batch[f"{part}__num_nodes"].reshape(-1).long()
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts), ptr


class InterfaceKind(ProteinPairKind):
    """Residue pairs across proteins A and B (ATOM3D PPI): ``pair_index [2, P]`` (row 0 in A, row 1 in B) with
    labels ``pair_y [P]`` 0/1, scored by a ``ContactHead`` on the two encoders' node features.

    Record: ``extra["pair_index"] [2, P]`` and ``label [P]``. With ``spec.options["positives_per_epoch"] = k``
    and the record's ``extra["positive_pairs"] [2, Q]`` (every neighbour pair), training reads draw the pairs per
    epoch with :func:`pa_geo.formats.atom3d_ppi.sample_ppi_pairs`, atom3d's rule (``examples/ppi/gnn/data.py``:
    at most k positives re-drawn every epoch, ``negatives_per_positive`` x as many non-neighbour pairs with a fixed
    ``random_state``); evaluation reads (epoch None) keep the record's own pairs, which are that function's epoch-0
    draw. The draw is a pure function of ``(seed, record id, epoch)``, so it is the same in every worker.
    """

    name = "interface"
    head_inputs = ("residue_pair",)

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        index = np.asarray(record.extra.get("pair_index"))
        label = np.asarray(record.label)
        if index.ndim != 2 or index.shape[0] != 2 or label.shape != (index.shape[1],):
            raise bad_record(self.spec, record, f"expected extra['pair_index'] [2, P] and label [P], got "
                                                f"{index.shape} and {label.shape}")
        la, lb = data.part_num_nodes("a"), data.part_num_nodes("b")
        if index.size and (index.min() < 0 or index[0].max() >= la or index[1].max() >= lb):
            raise bad_record(self.spec, record, f"pair_index outside the proteins' {la} and {lb} residues")
        if not np.isin(label, (0, 1)).all():
            raise bad_record(self.spec, record, "residue-pair labels must be 0/1")
        data.pair_index = torch.from_numpy(index.astype(np.int64))
        data.pair_y = torch.from_numpy(label.astype(np.float32))
        positives = record.extra.get("positive_pairs")
        if self.spec.options.get("positives_per_epoch") and positives is not None:
            data.positive_pairs = torch.from_numpy(np.asarray(positives, np.int64).reshape(2, -1))

    def prepare(self, data: TaskData, index: int, epoch: int | None, seed: int) -> TaskData:
        positives = data["positive_pairs"] if "positive_pairs" in data else None
        if positives is not None:
            del data["positive_pairs"]  # read here only: never batched
        k = self.spec.options.get("positives_per_epoch")
        if positives is None or epoch is None or not k:
            return data

        pair_index, label = sample_ppi_pairs(
            positives.numpy(), (data.part_num_nodes("a"), data.part_num_nodes("b")), epoch=int(epoch),
            key=str(data.record_id), seed=int(seed), max_positives=int(k),
            negative_ratio=int(self.spec.options.get("negatives_per_positive", 1)))
        data.pair_index, data.pair_y = torch.from_numpy(pair_index), torch.from_numpy(label)
        return data

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        views = self.views(batch)
        a, b = encoder(views["a"]), encoder(views["b"])
        joint = EncoderOutput(graph=a.graph, node=torch.cat([a.node, b.node]), batch=torch.cat([a.batch, b.batch]))
        offset = torch.tensor([[0], [a.node.shape[0]]], device=a.node.device)
        return head(joint, batch.pair_index + offset)

    def outputs(self, batch: Batch, out: Any) -> StepOutputs:
        return StepOutputs(out[0], batch.pair_y, None, self.metric_kwargs(batch))

    def predict(self, out: Any, loss: nn.Module) -> Any:
        return out[0].detach(), out[1]

    def prediction_frame(self, batch: Batch, out: Any) -> pd.DataFrame:
        owner_a, ptr_a = _owner_and_ptr(batch, "a")
        _, ptr_b = _owner_and_ptr(batch, "b")
        owner = owner_a[batch.pair_index[0]]
        local = torch.stack([batch.pair_index[0] - ptr_a[owner], batch.pair_index[1] - ptr_b[owner]])
        return pair_rows(list(batch.record_id), out[0], local, owner)
