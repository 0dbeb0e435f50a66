"""``PaGeoDataModule``: a task's splits as graphs with cached embeddings, batched by a node budget."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from pa_geo.errors import ConfigError
from pa_geo.train.batch import CollateExamples, TaskExample
from pa_geo.train.examples import GraphBuilder, build_examples
from pa_geo.train.sampler import NodeBudgetBatchSampler


class ExampleDataset(Dataset):
    """A list of :class:`TaskExample` of one task and split, built once and kept in memory."""

    def __init__(self, task: str, split: str, examples: list[TaskExample]) -> None:
        self.task, self.split, self.examples = task, split, examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> TaskExample:
        return self.examples[i]

    @property
    def sizes(self) -> list[int]:
        """Node count of every example (all its graphs), ``[len(self)]``."""
        return [ex.num_nodes for ex in self.examples]


def _embedding_sources(embeddings: list[dict[str, Any]]) -> list[Any]:
    from pa_geo.backbones import available_backbones
    from pa_geo.datasets.embedded import EmbeddingSource

    sources = []
    for i, spec in enumerate(embeddings):
        unknown = set(spec) - {"cache", "backbone", "layers"}
        if unknown or not {"cache", "backbone", "layers"} <= set(spec):
            raise ConfigError(f"data.embeddings[{i}] must have exactly the keys cache, backbone, layers; got "
                              f"{', '.join(sorted(spec))}")
        if spec["backbone"] not in available_backbones():
            raise ConfigError(f"data.embeddings[{i}]: unknown backbone {spec['backbone']!r}; known backbones: "
                              f"{', '.join(available_backbones())}")
        layers = spec["layers"] if isinstance(spec["layers"], (list, tuple)) else [spec["layers"]]
        sources.append(EmbeddingSource(str(spec["cache"]), str(spec["backbone"]), list(layers)))
    return sources


class PaGeoDataModule(pl.LightningDataModule):
    """Graphs of one primary task (and optional auxiliary tasks) for training, evaluation and prediction.

    Args:
        task: primary task name (``pa_geo.tasks.get_task``).
        data_root: directory with the task's released files.
        embeddings: frozen-backbone inputs, each ``{cache: <cache root>, backbone: <name>, layers: [int, ...]}``;
            attached as ``emb_<backbone>_<layer>`` node fields (read-only: DDP ranks share one cache).
        graph: ``{kind: residue | atom, ...builder kwargs, ligand: {...atom-graph kwargs}}``.
        batch_nodes: node budget of a batch (both graphs count for pair tasks).
        num_workers: DataLoader workers.
        seed: seed of the batch shuffles.
        max_records: keep only the first ``max_records`` records of every split (quick runs), None = all.
        aux_data_roots: auxiliary tasks of multi-task training: ``{task name: data root or None (= data_root)}``
            (the loss weights live in ``model.aux_tasks``; a different name, so Lightning can merge both hparams).
        predict_split: split written by ``predict`` (default: the primary task's first test split).
        bucket_size: examples per length-sorted shuffle bucket.
        graph_cache: directory of on-disk graph datasets (``GraphDataset``: built once by ``prepare_data`` on one
            process, reused by every later run with the same proteins and graph settings); None = build in memory.

    Batches are :class:`~pa_geo.train.batch.TaskBatch`; with auxiliary tasks the training loader yields
    ``{task: TaskBatch}`` (Lightning's ``max_size_cycle``) and evaluation runs one loader per (task, split).
    """

    def __init__(self, task: str, data_root: str, embeddings: list[dict[str, Any]] | None = None,
                 graph: dict[str, Any] | None = None, batch_nodes: int = 4096, num_workers: int = 0, seed: int = 0,
                 max_records: int | None = None, aux_data_roots: dict[str, str | None] | None = None,
                 predict_split: str | None = None, bucket_size: int = 256, graph_cache: str | None = None) -> None:
        super().__init__()
        from pa_geo.tasks import get_task

        if batch_nodes < 1:
            raise ConfigError(f"data.batch_nodes must be >= 1, got {batch_nodes}")
        self.save_hyperparameters()
        self.specs = {task: get_task(task)}
        for name in aux_data_roots or {}:
            self.specs[name] = get_task(name)
        self.task = task
        self.roots = {task: Path(data_root)}
        self.roots.update({k: Path(v or data_root) for k, v in (aux_data_roots or {}).items()})
        self.embeddings = list(embeddings or [])
        self.builder = GraphBuilder(**dict(graph or {}))
        self.batch_nodes, self.num_workers, self.seed = batch_nodes, num_workers, seed
        self.max_records, self.bucket_size = max_records, bucket_size
        if predict_split is not None and predict_split not in self.specs[task].splits:
            raise ConfigError(f"data.predict_split {predict_split!r} is not a split of {task}: "
                              f"{', '.join(self.specs[task].splits)}")
        self.predict_split = predict_split or (self.specs[task].test_splits or self.specs[task].splits[-1:])[0]
        self._datasets: dict[tuple[str, str], ExampleDataset] = {}
        self._sources: list[Any] = _embedding_sources(self.embeddings)  # checks names now; stores open lazily
        self._target_stats: dict[str, tuple[float, float]] = {}
        self.graph_cache = graph_cache
        self._graphs: dict[str, Any] = {}  # protein fingerprint -> graph, shared by tasks / splits / records

    @property
    def task_names(self) -> list[str]:
        """Primary task first, then the auxiliary tasks."""
        return list(self.specs)

    def _attach(self, graph, protein):
        from pa_geo.datasets.embedded import attach_embeddings

        return attach_embeddings(graph, protein, self._sources) if self._sources else graph

    def records(self, task: str, split: str) -> list:
        """The :class:`~pa_geo.datasets.records.TaskRecord` list of ``task``'s ``split`` (first ``max_records``)."""
        records = self.specs[task].load(self.roots[task], split)
        return records if self.max_records is None else records[: self.max_records]

    def _build_graphs(self, task: str, split: str, records: list) -> None:
        """Graphs of every protein of ``records`` not built yet (from the on-disk graph dataset when configured)."""
        from pa_geo.datasets.graph_dataset import GraphDataset, source_fingerprint

        todo: dict[str, Any] = {}
        for rec in records:
            for p in rec.proteins:
                fp = source_fingerprint(p)
                if fp not in self._graphs:
                    todo.setdefault(fp, p)
        if not todo:
            return
        if self.graph_cache is None:
            self._graphs.update({fp: self.builder(p) for fp, p in todo.items()})
            return
        ds = GraphDataset(Path(self.graph_cache) / task / split, list(todo.values()), self.builder.function,
                          self.builder.kwargs, version="pa_geo.train")
        self._graphs.update({fp: ds[i] for i, fp in enumerate(todo)})

    def prepare_data(self) -> None:
        """With ``graph_cache``: build the on-disk graphs of every split once (one process; ranks then load them)."""
        if self.graph_cache is None:
            return
        for task, spec in self.specs.items():
            for split in spec.splits:
                self._build_graphs(task, split, self.records(task, split))
        self._graphs.clear()

    def dataset(self, task: str, split: str) -> ExampleDataset:
        """The (cached) examples of ``task``'s ``split``; built from the task's files on first use."""
        key = (task, split)
        if key not in self._datasets:
            from pa_geo.datasets.graph_dataset import source_fingerprint

            spec = self.specs[task]
            records = self.records(task, split)
            if split == spec.train_split and spec.label_type == "regression":
                from pa_geo.tasks.losses import regression_target_stats

                self._target_stats[task] = regression_target_stats(records)
            self._build_graphs(task, split, records)
            examples = build_examples(spec, records, self.builder, self._attach,
                                      lambda p: self._graphs[source_fingerprint(p)])
            self._datasets[key] = ExampleDataset(task, split, examples)
        return self._datasets[key]

    def target_stats(self, task: str) -> tuple[float, float] | None:
        """(mean, std) of a regression task's training labels (None before its train split is loaded)."""
        return self._target_stats.get(task)

    def eval_splits(self, stage: str) -> list[tuple[str, str]]:
        """(task, split) pairs evaluated by ``stage`` (``validate`` | ``test``), primary task first."""
        if stage == "validate":
            return [(t, s.valid_split) for t, s in self.specs.items()]
        return [(t, split) for t, s in self.specs.items() for split in s.test_splits]

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets ``stage`` needs (graphs + embeddings, once per split)."""
        if stage in ("fit", None):
            for t, s in self.specs.items():
                self.dataset(t, s.train_split)
        if stage in ("fit", "validate", None):
            for t, split in self.eval_splits("validate"):
                self.dataset(t, split)
        if stage in ("test", None):
            for t, split in self.eval_splits("test"):
                self.dataset(t, split)
        if stage == "predict":
            self.dataset(self.task, self.predict_split)

    def _loader(self, ds: ExampleDataset, shuffle: bool) -> DataLoader:
        sampler = NodeBudgetBatchSampler(ds.sizes, self.batch_nodes, shuffle=shuffle, seed=self.seed,
                                         bucket_size=self.bucket_size)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=CollateExamples(ds.task, ds.split),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        """The primary task's training loader, or ``{task: loader}`` for multi-task training."""
        loaders = {t: self._loader(self.dataset(t, s.train_split), True) for t, s in self.specs.items()}
        return loaders[self.task] if len(loaders) == 1 else loaders

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per task's validation split."""
        return [self._loader(self.dataset(t, s), False) for t, s in self.eval_splits("validate")]

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per (task, test split)."""
        return [self._loader(self.dataset(t, s), False) for t, s in self.eval_splits("test")]

    def predict_dataloader(self) -> DataLoader:
        """The primary task's ``predict_split``."""
        return self._loader(self.dataset(self.task, self.predict_split), False)
