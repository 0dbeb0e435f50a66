"""One PyG ``Data`` per example, batched by PyG's standard collater (``Batch.from_data_list``).

A pair of graphs is ONE ``Data`` (PyG's "pairs of graphs" convention, ``docs/advanced/batching``): every graph of an
example is a named *part*. The main part's fields keep their names (``edge_index``, ``emb_esm1b_33``, ...); another
part's fields are ``<part>__<field>`` (``a__edge_index``, ``ligand__element``) and ``<part>__num_nodes`` holds its
node count. :meth:`TaskData.__inc__` offsets each part's index fields by that part's own node count, so a batch of B
pairs holds two disjoint unions of graphs; :func:`part_view` cuts one part back out as an encoder-ready ``Batch``.

Label fields (shapes after batching B examples with N main-part nodes):
    y              [B, T] float32 / [B] int64       graph-level target
    node_y         [N] int64 / [N, T] float32       node-level target; node_y_mask [N] bool
    contact_index  [2, C] int64                     true contacts (i < j) of the main part, offset like edge_index
    pair_index     [2, P] int64                     residue pairs across parts a (row 0) and b (row 1); pair_y [P]
    record_id      list of B str; extra_<key> list of B scalars (e.g. extra_target for per-target metrics)
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

PART_SEP = "__"


def part_key(part: str, field: str) -> str:
    """The stored name of ``field`` of graph part ``part`` (``""`` = the main part: the field itself)."""
    return f"{part}{PART_SEP}{field}" if part else field


def split_key(key: str) -> tuple[str, str]:
    """``"a__edge_index"`` -> ``("a", "edge_index")``; ``"edge_index"`` -> ``("", "edge_index")``."""
    part, sep, field = key.partition(PART_SEP)
    return (part, field) if sep else ("", key)


class TaskData(Data):
    """An example of a task: its graph parts (``PARTS``; ``""`` is the unprefixed main part) and labels."""

    PARTS: ClassVar[tuple[str, ...]] = ("",)

    @classmethod
    def from_parts(cls, graphs: dict[str, Data], **fields: Any) -> "TaskData":
        """Join the graphs of one example (``{part: Data}``, parts as in ``PARTS``) and add ``fields`` (labels, ids)."""
        store: dict[str, Any] = {}
        for part, graph in graphs.items():
            for key, value in graph.items():
                if key != "num_nodes":
                    store[part_key(part, key)] = value
            if part:
                store[part_key(part, "num_nodes")] = int(graph.num_nodes)
        data = cls(**store, **fields)
        main = graphs.get("")
        data.num_nodes = int(main.num_nodes) if main is not None else sum(int(g.num_nodes) for g in graphs.values())
        return data

    def part_num_nodes(self, part: str) -> int:
        """Nodes of one part of this (unbatched) example."""
        return int(self.num_nodes) if part == "" else int(self[part_key(part, "num_nodes")])

    def total_nodes(self) -> int:
        """Nodes over all parts (what a node budget counts)."""
        return sum(self.part_num_nodes(p) for p in self.PARTS)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        part, field = split_key(key)
        if field == "chain_index" or field.startswith("extra_"):  # a chain number / a record's plain value
            return 0
        if field == "atom2residue":  # indexes residues, not nodes (AtomGraph's rule)
            return int(self[part_key(part, "num_residues")])
        if field == "pair_index":
            return torch.tensor([[self.part_num_nodes("a")], [self.part_num_nodes("b")]])
        if "index" in field:
            return self.part_num_nodes(part)
        if part:
            return 0
        return super().__inc__(key, value, *args, **kwargs)


class ProteinData(TaskData):
    """One protein graph + a graph-level label ``y``."""


class ResidueData(TaskData):
    """One protein graph + per-node labels ``node_y`` / ``node_y_mask``."""


class ContactData(TaskData):
    """One residue graph + its contacts ``contact_index`` and the labelled residues ``node_y_mask``."""


class PairData(TaskData):
    """Two protein graphs (parts ``a`` and ``b``: A / B, or wild type / mutant) + ``y`` or ``pair_index`` /
    ``pair_y``."""

    PARTS = ("a", "b")


class LigandData(TaskData):
    """A protein graph (main part) + a ligand graph (part ``ligand``) + ``y``."""

    PARTS = ("", "ligand")


def part_view(batch: Batch, part: str) -> Batch:
    """Part ``part`` of a batch of :class:`TaskData` as a ``Batch`` of its own (fields unprefixed, ``batch`` / ``ptr`` /
    ``num_graphs`` from the part's node counts). The main part (``""``) is the batch itself."""
    if part == "":
        return batch
    prefix = part + PART_SEP
    counts = batch[prefix + "num_nodes"]
    counts = counts if isinstance(counts, Tensor) else torch.as_tensor(counts)
    counts = counts.reshape(-1).long()
    fields = {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix) and k != prefix + "num_nodes"}
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    index = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    view = Batch(**fields, batch=index, ptr=ptr)
    view.num_nodes = int(ptr[-1])
    view._num_graphs = int(counts.numel())
    return view
