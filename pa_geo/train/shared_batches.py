"""Auxiliary tasks trained on the primary task's batches (``data.aux_shared_batches``).

When an auxiliary task labels the same examples as the primary task (the demo's relative solvent accessibility
beside 8-state DSSP: the same chains, the same graphs), drawing a separate batch per task runs the encoder twice per
step on the same proteins. With shared batches the training loader yields the primary task's examples carrying every
auxiliary task's labels as ``<aux task>:<label field>`` (:class:`WithAuxLabels`), and the module cuts one view per
task out of the batch (:func:`task_view`) and runs the encoder once per step for all heads
(:class:`OncePerBatch`). Validation and test keep one loader per (task, split).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from torch_geometric.data import Batch, Data, Dataset

from pa_geo.errors import DatasetError

# fields that hold a task's labels (pa_geo.tasks.kinds.data): copied from an auxiliary example onto the primary's
LABEL_FIELDS: tuple[str, ...] = ("y", "node_y", "node_y_mask", "contact_index", "pair_index", "pair_y")


def aux_key(task: str, field: str) -> str:
    """Where auxiliary task ``task``'s label ``field`` travels on a shared example: ``<task>:<field>`` (not the
    ``<part>__<field>`` of graph parts: these are labels of the main part, batched as its own fields are)."""
    return f"{task}:{field}"


def shared_tasks(batch: Batch, tasks: list[str]) -> list[str]:
    """The tasks of ``tasks`` whose labels ``batch`` carries (:func:`aux_key`)."""
    return [t for t in tasks if any(aux_key(t, f) in batch for f in LABEL_FIELDS)]


class WithAuxLabels(Dataset):
    """The primary task's training examples with every auxiliary task's labels attached.

    ``primary``: the primary task's training dataset (``ds[i]`` / ``ds[(i, epoch)]``, ``sizes``, ``meta``);
    ``aux``: ``{task: its training dataset}`` holding the same records in the same order (checked per example by
    ``record_id``: a mismatch is a one-line :class:`DatasetError`). ``ds[key]`` = the primary example + for every
    auxiliary task and label field ``f`` it has, ``<task>:f`` (:func:`aux_key`).
    """

    def __init__(self, primary: Any, aux: dict[str, Any]) -> None:
        self.primary, self.aux = primary, dict(aux)
        for task, ds in self.aux.items():
            if len(ds) != len(primary):
                raise DatasetError(f"data.aux_shared_batches: auxiliary task {task} has {len(ds)} training examples, "
                                   f"the primary task {len(primary)}: shared batches need the same records")
        super().__init__(None, log=False)

    @property
    def sizes(self) -> Any:
        """Nodes of every example (the primary's), int64 ``[len]``."""
        return self.primary.sizes

    @property
    def meta(self) -> dict[str, Any]:
        """The primary store's ``meta.json``."""
        return self.primary.meta

    def len(self) -> int:
        return len(self.primary)

    def get(self, idx: int) -> Data:
        return self[idx]

    def __getitem__(self, key: Any) -> Data:  # type: ignore[override]
        data = self.primary[key]
        index = key[0] if isinstance(key, tuple) else key
        for task, ds in self.aux.items():
            other = ds.store.get(int(index)) if hasattr(ds, "store") else ds[index]
            if other.get("record_id") != data.get("record_id"):
                raise DatasetError(f"data.aux_shared_batches: example {index} is {data.get('record_id')!r} in the "
                                   f"primary task but {other.get('record_id')!r} in {task}: shared batches need the "
                                   f"same records in the same order")
            for field in LABEL_FIELDS:
                if field in other:
                    data[aux_key(task, field)] = other[field]
        return data


def task_view(batch: Batch, task: str) -> Batch:
    """A shallow copy of a shared ``batch`` whose label fields are auxiliary task ``task``'s (tensors are shared,
    not copied) and whose ``task`` is ``task``."""
    view = copy.copy(batch)
    for field in LABEL_FIELDS:
        key = aux_key(task, field)
        if key in batch:
            view[field] = batch[key]
        elif field in view:
            del view[field]
    view.task = task
    return view


class OncePerBatch:
    """An encoder called through this object runs once per shared batch: a call on any view of a batch already
    encoded (:func:`task_view` shares its tensors, so the same ``batch.batch`` vector) returns the first output.
    Attributes are the encoder's (``graph_dim``, ``node_dim``, ...). Use one instance per step."""

    def __init__(self, encoder: Callable[[Batch], Any]) -> None:
        self.encoder = encoder
        self._seen: list[tuple[Any, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def __call__(self, batch: Batch) -> Any:
        token = getattr(batch, "batch", None)
        token = batch if token is None else token
        for seen, out in self._seen:
            if seen is token:
                return out
        out = self.encoder(batch)
        self._seen.append((token, out))
        return out
