"""One labelled example as graphs, and the batch the LightningModule consumes (single, pair and ligand tasks)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch_geometric.data import Batch, Data


@dataclass
class TaskExample:
    """A record of a task turned into graphs.

    id       record id (``TaskRecord.id``)
    graphs   one graph (single-protein tasks); two (pair: A, B; mutation: wild type, mutant); protein + ligand graph
             (ligand tasks). Node-level labels live on ``graphs[0]`` as ``node_y`` / ``node_y_mask`` (schema).
    y           graph-level label: ``[1, T]`` float32 or ``[1]`` int64; None for node / residue-pair tasks
    pair_y      residue-pair labels: a contact map ``[L, L]`` bool (one protein), or ``[P]`` float32 labels of the
                pairs in ``pair_index`` (two proteins, e.g. ATOM3D PPI); else None
    pair_index  ``[2, P]`` int64 residue pairs (row 0 in ``graphs[0]``, row 1 in ``graphs[1]``), two-protein
                residue-pair tasks only
    extra       task-specific values (e.g. a PSR target id) carried to metrics and predictions
    """

    id: str
    graphs: list[Data]
    y: torch.Tensor | None = None
    pair_y: torch.Tensor | None = None
    pair_index: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        """Nodes over all graphs: what the node-budget sampler packs."""
        return int(sum(g.num_nodes for g in self.graphs))


@dataclass
class TaskBatch:
    """A batch of ``B`` examples of one task and split.

    task, split  where it came from (metrics and log names are keyed by them)
    ids          ``[B]`` record ids
    graphs       one PyG ``Batch`` per graph slot of :attr:`TaskExample.graphs` (``len`` 1, or 2 for pair /
                 mutation / ligand tasks); ``graphs[0].node_y`` / ``node_y_mask`` hold node labels
    y            ``[B, T]`` float32 or ``[B]`` int64 graph-level labels, or None
    pair_y       contact maps: list of ``B`` tensors ``[L_i, L_i]`` bool; two-protein pair labels: ``[P]`` float32
                 (all examples concatenated); else None
    pair_index   ``[2, P]`` batch node indices into ``graphs[0]`` (row 0) and ``graphs[1]`` (row 1), or None
    extra        ``{key: list of B values}``
    """

    task: str
    split: str
    ids: list[str]
    graphs: list[Batch]
    y: torch.Tensor | None = None
    pair_y: list[torch.Tensor] | torch.Tensor | None = None
    pair_index: torch.Tensor | None = None
    extra: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def num_graphs(self) -> int:
        """``B``."""
        return len(self.ids)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TaskBatch":
        """Move every tensor to ``device`` (Lightning calls this through ``move_data_to_device``)."""
        def mv(t):
            return None if t is None else t.to(device, non_blocking=non_blocking)

        pair_y = [mv(p) for p in self.pair_y] if isinstance(self.pair_y, list) else mv(self.pair_y)
        return TaskBatch(self.task, self.split, self.ids, [g.to(device, non_blocking=non_blocking) for g in self.graphs],
                         mv(self.y), pair_y, mv(self.pair_index), self.extra)


class CollateExamples:
    """``DataLoader`` collate: a list of :class:`TaskExample` -> one :class:`TaskBatch` (picklable for workers)."""

    def __init__(self, task: str, split: str) -> None:
        self.task = task
        self.split = split

    def __call__(self, examples: list[TaskExample]) -> TaskBatch:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        slots = len(examples[0].graphs)
        graphs = [Batch.from_data_list([ex.graphs[k] for ex in examples]) for k in range(slots)]
        ys = [ex.y for ex in examples]
        y = torch.cat(ys, 0) if all(t is not None for t in ys) else None
        pair_y = pair_index = None
        if examples[0].pair_index is not None:  # two proteins: offset each row by its slot's node counts
            pair_y = torch.cat([ex.pair_y for ex in examples])
            pair_index = torch.cat([ex.pair_index + torch.tensor([[int(graphs[0].ptr[b])], [int(graphs[1].ptr[b])]])
                                    for b, ex in enumerate(examples)], dim=1)
        elif examples[0].pair_y is not None:
            pair_y = [ex.pair_y for ex in examples]
        keys = examples[0].extra.keys()
        extra = {k: [ex.extra.get(k) for ex in examples] for k in keys}
        return TaskBatch(self.task, self.split, [ex.id for ex in examples], graphs, y, pair_y, pair_index, extra)
