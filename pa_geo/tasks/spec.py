"""Task specifications: inputs, labels, loss, metrics, split names and the loader of each task's records; a spec as
plain values (:func:`spec_record`) for checkpoints and configs."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError
from pa_geo.tasks.metric_factories import metric_higher_is_better

InputKind = Literal["sequence", "structure", "pair", "ligand", "mutation", "atom"]
Level = Literal["graph", "node", "residue_pair"]
LabelType = Literal["regression", "binary", "multiclass", "multilabel"]

# The task kind a spec gets when it names none (``pa_geo.tasks.kinds``): by input kind first, then by level.
KIND_BY_INPUT: dict[str, str] = {"ligand": "ligand", "mutation": "mutation"}
KIND_BY_INPUT_LEVEL: dict[tuple[str, str], str] = {("pair", "graph"): "protein_pair", ("pair", "residue_pair"): "interface"}
KIND_BY_LEVEL: dict[str, str] = {"graph": "protein", "node": "residue", "residue_pair": "contact"}


def default_kind(input_kind: str, level: str) -> str:
    """The kind of a task with ``input_kind`` and ``level`` (``""`` when no kind fits: registration reports it)."""
    return (KIND_BY_INPUT.get(input_kind) or KIND_BY_INPUT_LEVEL.get((input_kind, level))
            or ("" if input_kind == "pair" else KIND_BY_LEVEL.get(level, "")))


@dataclass
class TaskSpec:
    """What a task is: inputs, labels, loss, metrics and split names; ``load(root, split)`` reads its records.

    num_outputs   head output width: 1 for regression / binary, C classes for multiclass, T for multilabel
    metrics       torchmetrics-style names resolved by :func:`pa_geo.tasks.metrics.build_metrics`
    primary_metric / higher_is_better   what model selection / checkpointing monitors; ``higher_is_better`` defaults
                  to the primary metric's own direction (:func:`pa_geo.tasks.metric_factories.metric_higher_is_better`)
    loader        ``(root: Path, split: str) -> Iterable[TaskRecord]`` reading the benchmark's released files (a list, or
                  a generator that streams; it may yield a ``DatasetError`` for a record it cannot read)
    kind          name of its task kind (``pa_geo.tasks.kinds``); default :func:`default_kind` of input kind + level
    options       task-specific settings; ``has_structures`` (whether the proteins come with coordinates; default:
                  every input kind but ``sequence``) and ``backbone_levels`` decide which frozen backbones it reads
                  (:attr:`backbone_levels`); ``class_names`` (classification: one name per output, in output order)
                  name the classes in prediction rows (``prediction`` = the name, ``prob_<name>``) and feed
                  metrics that read them (``q3``)
    reported_metrics   metrics a results table reports beside the primary one (e.g. the demo's ``q3``), each one
                  of ``metrics``
    """

    name: str
    input_kind: InputKind
    level: Level
    label_type: LabelType
    num_outputs: int
    metrics: list[str]
    primary_metric: str
    splits: list[str]
    higher_is_better: bool | None = None
    loss: str = "auto"
    loader: Callable[[Path, str], Iterable[TaskRecord]] | None = None
    source: str = ""
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    reported_metrics: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = default_kind(self.input_kind, self.level)
        if self.higher_is_better is None:
            self.higher_is_better = metric_higher_is_better(self.primary_metric)

    @property
    def has_structures(self) -> bool:
        """Whether the task's proteins come with coordinates."""
        return bool(self.options.get("has_structures", self.input_kind != "sequence"))

    @property
    def backbone_levels(self) -> tuple[str, ...]:
        """The backbone levels whose embeddings the task reads (``data.embeddings`` of other levels are left out):
        ``options["backbone_levels"]`` when given, else sequence and structure, or sequence alone without
        coordinates."""
        given = self.options.get("backbone_levels")
        if given:
            return tuple(given)
        return ("sequence", "structure") if self.has_structures else ("sequence",)

    @property
    def train_split(self) -> str:
        """The first split name (training)."""
        return self.splits[0]

    @property
    def valid_split(self) -> str:
        """The second split name (validation)."""
        return self.splits[1]

    @property
    def test_splits(self) -> list[str]:
        """All remaining split names (one or more test sets, e.g. cb513 / ts115 / casp12)."""
        return self.splits[2:]

    def load(self, root: str | Path, split: str) -> Iterable[TaskRecord]:
        """Read ``split`` from the task's released files under ``root``."""
        if split not in self.splits:
            raise ConfigError(f"task {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}")
        if self.loader is None:
            raise ConfigError(f"task {self.name!r} has no file loader")
        return self.loader(Path(root), split)


def spec_record(spec: TaskSpec) -> dict[str, Any]:
    """Every field of ``spec`` but its loader, as plain values (what a checkpoint stores to rebuild the task)."""
    return {f.name: copy.deepcopy(getattr(spec, f.name)) for f in fields(spec) if f.name != "loader"}


def spec_from_record(record: dict[str, Any]) -> TaskSpec:
    """The spec :func:`spec_record` wrote, without a loader (a checkpoint's task: predicts, cannot load splits)."""
    known = {f.name for f in fields(TaskSpec)} - {"loader"}
    unknown = sorted(set(record) - known)
    if unknown or "name" not in record:
        raise ConfigError(f"task record with unknown field(s) {unknown} or no name: not written by this pa_geo")
    return TaskSpec(**{k: copy.deepcopy(v) for k, v in record.items()})
