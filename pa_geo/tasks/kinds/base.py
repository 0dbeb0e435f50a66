"""``TaskKind``: everything that depends on the *kind* of a task, in one class per kind.

A kind turns a :class:`~pa_geo.datasets.records.TaskRecord` into its :class:`~pa_geo.tasks.kinds.data.TaskData`
subclass (build side), and knows how encoder and head are called on a batch, which tensors are predictions, targets
and mask, which heads fit, and what a prediction row is (model side). Kinds never import Lightning.
"""
from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Protocol

import pandas as pd
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError, DatasetError
from pa_geo.tasks.kinds.data import TaskData, part_view
from pa_geo.tasks.kinds.labels import bad_record
from pa_geo.tasks.kinds.rows import graph_rows
from pa_geo.tasks.losses import TaskLoss, build_loss
from pa_geo.tasks.spec import TaskSpec


class GraphSource(Protocol):
    """What a kind needs to build graphs (``pa_geo.train.graph_builder.GraphBuilder``)."""

    def protein(self, protein: Any) -> Data: ...

    def ligand(self, record: TaskRecord) -> Data: ...


class StepOutputs(NamedTuple):
    """What the loss and the metrics of one batch read.

    preds   raw head outputs (logits / standardised regression values), rows as ``target``
    target  ``[B(, T)]``, ``[N(, T)]`` or ``[P]``
    mask    ``[rows]`` bool or None (every row labelled)
    kwargs  extra metric inputs (``pair_index`` / ``batch`` for contact precision, ``group`` for per-group metrics)
    """

    preds: Tensor
    target: Tensor
    mask: Tensor | None
    kwargs: dict[str, Any]


class TaskKind:
    """Base class of the task kinds; one instance per task spec (``get_kind(spec)``).

    Class attributes of a kind: ``name`` (registry name), ``data_class`` (its ``TaskData``), ``num_proteins``
    (proteins per record), ``head_inputs`` (the ``task_input`` values of the heads it accepts), ``version`` (bump
    when ``to_data`` changes: it is part of the example-store key).
    """

    name: ClassVar[str] = ""
    data_class: ClassVar[type[TaskData]] = TaskData
    num_proteins: ClassVar[int] = 1
    head_inputs: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[int] = 1

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r})"

    # ---- build side ---------------------------------------------------------------------------------------------
    def to_data(self, record: TaskRecord, graphs: GraphSource) -> TaskData:
        """The example of ``record``: graphs of its proteins (``graphs.protein``) + labels; one-line
        :class:`DatasetError` naming the task and the record when the record does not fit the task."""
        if len(record.proteins) != self.num_proteins:
            raise bad_record(self.spec, record, f"{len(record.proteins)} proteins, a {self.name} task needs "
                                                f"{self.num_proteins}")
        extras = {f"extra_{k}": v for k, v in record.extra.items() if isinstance(v, (str, int, float, bool))}
        try:
            parts = self.graph_parts(record, graphs)
        except DatasetError as err:  # e.g. an unparseable ligand SMILES: name the task and the record
            raise bad_record(self.spec, record, " ".join(str(err).split())) from None
        data = self.data_class.from_parts(parts, record_id=str(record.id), **extras)
        self.add_labels(data, record)
        return data

    def to_input_data(self, record: TaskRecord, graphs: GraphSource) -> TaskData:
        """The example of an unlabelled ``record`` (an input to predict): its graphs and id, no labels."""
        if len(record.proteins) != self.num_proteins:
            raise bad_record(self.spec, record, f"{len(record.proteins)} proteins, a {self.name} task needs "
                                                f"{self.num_proteins}")
        try:
            parts = self.graph_parts(record, graphs)
        except DatasetError as err:
            raise bad_record(self.spec, record, " ".join(str(err).split())) from None
        return self.data_class.from_parts(parts, record_id=str(record.id))

    def graph_parts(self, record: TaskRecord, graphs: GraphSource) -> dict[str, Data]:
        """``{part: graph}`` of a record (default: the main part from its one protein)."""
        return {"": graphs.protein(record.proteins[0])}

    def add_labels(self, data: TaskData, record: TaskRecord) -> None:
        """Write the record's labels onto ``data`` (fields: :mod:`pa_geo.tasks.kinds.data`)."""
        raise NotImplementedError

    def num_nodes(self, data: TaskData) -> int:
        """Nodes of every part of one example (the node-budget sampler's size)."""
        return data.total_nodes()

    def prepare(self, data: TaskData, index: int, epoch: int | None, seed: int) -> TaskData:
        """Epoch hook, run on every read of example ``index`` (``epoch`` None outside training); identity here."""
        return data

    # ---- model side ---------------------------------------------------------------------------------------------
    def bind_head(self, head: nn.Module, encoder: nn.Module) -> None:
        """Check that ``head`` fits this kind and size it: ``in_dim`` = ``encoder.<head.reads>_dim``, ``out_dim`` =
        the task's ``num_outputs``. A head of the wrong kind or width is a one-line :class:`ConfigError`."""
        task_input = getattr(head, "task_input", None)
        if task_input not in self.head_inputs:
            raise ConfigError(f"task {self.spec.name!r} ({self.name} kind) needs a head for "
                              f"{' or '.join(self.head_inputs)} inputs, got {type(head).__name__} "
                              f"({task_input or 'unknown'} inputs)")
        reads = getattr(head, "reads", "graph")
        dim = getattr(encoder, f"{reads}_dim", None)
        if not isinstance(dim, int):
            raise ConfigError(f"encoder {type(encoder).__name__} has no int {reads}_dim for the "
                              f"{self.spec.name!r} head")
        head.bind(dim, self.spec.num_outputs, where=f"task {self.spec.name!r}")

    def build_loss(self, target_stats: tuple[float, float] | None = None) -> TaskLoss:
        """The task's loss (label type's default unless the spec names one); ``target_stats`` standardise
        regression targets."""
        return build_loss(self.spec, target_stats)

    @property
    def encoded_parts(self) -> tuple[str, ...]:
        """The graph parts the encoder reads (default: all of them)."""
        return self.data_class.PARTS

    def views(self, batch: Batch) -> dict[str, Batch]:
        """Encoder-ready batches of every graph part (``""`` = the batch itself)."""
        return {part: part_view(batch, part) for part in self.data_class.PARTS}

    def forward(self, encoder: nn.Module, head: nn.Module, batch: Batch) -> Any:
        """Head output of a batch (default: ``head(encoder(batch))``)."""
        return head(encoder(batch))

    def metric_kwargs(self, batch: Batch) -> dict[str, Any]:
        """``group`` (per-group metrics, e.g. PSR targets) from ``extra_<spec.options['group_key']>`` (default
        ``target``) when the batch carries it."""
        key = self.spec.options.get("group_key", "target")
        values = batch.get(f"extra_{key}") if key is not None else None
        return {} if values is None else {"group": values}

    def outputs(self, batch: Batch, out: Any) -> StepOutputs:
        """Predictions, targets and mask of a batch (default: graph level, ``batch.y``)."""
        return StepOutputs(out, batch.y, None, self.metric_kwargs(batch))

    def predict(self, out: Any, loss: TaskLoss) -> Any:
        """Head output in label units (regression de-standardised), detached."""
        return loss.denormalize(out.detach())

    def prediction_frame(self, batch: Batch, out: Any) -> pd.DataFrame:
        """Rows of one predicted batch (default: one per example, ``id`` + values)."""
        return graph_rows(self.spec, list(batch.record_id), out)

