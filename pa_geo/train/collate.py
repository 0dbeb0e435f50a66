"""The DataLoader's collate: PyG's standard ``Collater`` (``Batch.from_data_list``; each example's ``TaskData``
offsets its own index fields), plus the task and split names the module logs metrics under."""
from __future__ import annotations

from typing import Any

from torch_geometric.data import Batch
from torch_geometric.loader.dataloader import Collater


class TaskCollater(Collater):
    """``examples -> Batch`` with ``batch.task`` and ``batch.split`` set (picklable for DataLoader workers).

    The batch keeps what a training / evaluation / prediction step reads, not PyG's per-example slice tables
    (``_slice_dict`` / ``_inc_dict``, one tensor per field each, used only by ``Batch.get_example``): a worker sends
    every tensor of a batch through its own shared-memory segment, and these tripled the tensors per batch.
    """

    def __init__(self, task: str, split: str) -> None:
        super().__init__(None)
        self.task, self.split = task, split

    def __call__(self, batch: list[Any]) -> Batch:
        if not batch:
            raise ValueError("cannot collate an empty batch")
        out = super().__call__(batch)
        out.task, out.split = self.task, self.split
        out._slice_dict = out._inc_dict = None
        return out
