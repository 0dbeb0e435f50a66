"""Task specifications: inputs, labels, loss, metrics, split names and the loader of each task's records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal


from pa_geo.datasets.records import TaskRecord  # noqa: F401  (re-exported: tasks build records)

InputKind = Literal["sequence", "structure", "pair", "ligand", "mutation", "atom"]
Level = Literal["graph", "node", "residue_pair"]
LabelType = Literal["regression", "binary", "multiclass", "multilabel"]


@dataclass
class TaskSpec:
    """What a task is: inputs, labels, loss, metrics and split names; ``load(root, split)`` reads its records.

    num_outputs   head output width: 1 for regression / binary, C classes for multiclass, T for multilabel
    metrics       torchmetrics-style names resolved by :func:`pa_geo.tasks.metrics.build_metrics`
    primary_metric / higher_is_better   what model selection / checkpointing monitors
    loader        ``(root: Path, split: str) -> list[TaskRecord]`` reading the benchmark's released files
    """

    name: str
    input_kind: InputKind
    level: Level
    label_type: LabelType
    num_outputs: int
    metrics: list[str]
    primary_metric: str
    splits: list[str]
    higher_is_better: bool = True
    loss: str = "auto"
    loader: Callable[[Path, str], list[TaskRecord]] | None = None
    source: str = ""
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)

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

    def load(self, root: str | Path, split: str) -> list[TaskRecord]:
        """Read ``split`` from the task's released files under ``root``."""
        from pa_geo.errors import ConfigError

        if split not in self.splits:
            raise ConfigError(f"task {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}")
        if self.loader is None:
            raise ConfigError(f"task {self.name!r} has no file loader")
        return self.loader(Path(root), split)
