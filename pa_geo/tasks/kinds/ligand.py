"""The ``ligand`` kind: a protein (main part) and a small molecule (part ``ligand``) -> one label (PDBbind,
BindingDB, ATOM3D LBA): ``head(encoder(protein), ligand batch) [B, C]`` (``LigandHead``)."""
from __future__ import annotations

from typing import Any

from torch import nn
from torch_geometric.data import Batch

from pa_geo.datasets.records import TaskRecord
from pa_geo.tasks.kinds.base import GraphSource, TaskKind
from pa_geo.tasks.kinds.data import LigandData, TaskData
from pa_geo.tasks.kinds.labels import encode_graph_label


class LigandKind(TaskKind):
    """Protein + ligand graph (``graphs.ligand(record)``: the ligand's atom graph, or the bond graph of its SMILES)."""

    name = "ligand"
    data_class = LigandData
    head_inputs = ("ligand",)

    @property
    def encoded_parts(self) -> tuple[str, ...]:
        return ("",)  # the ligand graph goes to the head, not the encoder

    def graph_parts(self, record: TaskRecord, graphs: GraphSource) -> dict:
        return {"": graphs.protein(record.proteins[0]), "ligand": graphs.ligand(record)}

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        data.y = encode_graph_label(self.spec, record)

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        return head(encoder(batch), self.views(batch)["ligand"])
