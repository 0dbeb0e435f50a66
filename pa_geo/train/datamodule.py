"""``PaGeoDataModule``: a task's splits as on-disk example stores, read lazily and batched by a node budget."""
from __future__ import annotations

import atexit
import functools
import hashlib
import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from pa_geo.errors import ConfigError, DatasetError
from pa_geo.train.collate import TaskCollater
from pa_geo.train.graphs import GraphBuilder
from pa_geo.train.sampler import NodeBudgetBatchSampler

STORE_VERSION = 1


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
    """Examples of one primary task (and optional auxiliary tasks) for training, evaluation and prediction.

    Args:
        task: primary task name (``pa_geo.tasks.get_task``).
        data_root: directory with the task's released files.
        embeddings: frozen-backbone inputs, each ``{cache: <cache root>, backbone: <name>, layers: [int, ...]}``;
            attached per example as ``emb_<backbone>_<layer>`` node fields by one transform (read-only LMDB:
            DDP ranks and workers share one cache).
        graph: ``{kind: residue | atom, ...builder kwargs, ligand: {...atom-graph kwargs}}``.
        batch_nodes: node budget of a batch (all graphs of an example count).
        num_workers: DataLoader workers.
        seed: seed of the batch shuffles and of per-epoch draws (ATOM3D PPI pairs).
        max_records: keep only the first ``max_records`` records of every split (quick runs), None = all.
        aux_data_roots: auxiliary tasks of multi-task training: ``{task name: data root or None (= data_root)}``
            (the loss weights live in ``model.aux_tasks``; a different name, so Lightning can merge both hparams).
        predict_split: split written by ``predict`` (default: the primary task's first test split).
        bucket_size: examples per length-sorted shuffle bucket.
        table: a label table (CSV / TSV / Parquet) to train on instead of a registered task: it is registered as
            ``task`` on the fly (``pa_geo.train.table_task``; ``data_root`` is then unused). The options below
            are its :class:`~pa_geo.datasets.table.TableSettings` (None = the default given there).
        level: table: ``protein``, ``residue`` or ``pair`` (columns with ``_a`` / ``_b``).
        type: table: ``regression``, ``binary``, ``multiclass`` or ``multilabel``.
        label_columns: table: the label column(s) (default ``[label]``).
        class_names: table: classes in output order (default: the values seen in the training split, sorted).
        mask_symbols: table: residue label symbols that are not scored (default ``.``).
        skip_bad: table: skip and count rows that cannot be read instead of stopping at the first one.
        split_fractions: table without a split column: train / valid / test fractions (default 0.8 0.1 0.1).
        split_identity: table without a split column: MMseqs2 ``--min-seq-id`` of the grouping (default 0.3).
        split_coverage: table without a split column: MMseqs2 ``-c`` (default 0.8).
        split_method: table without a split column: ``auto`` (MMseqs2 when on PATH), ``mmseqs`` or ``kmer``.
        split_seed: table without a split column: seed of the order clusters are dealt to the splits.
        embed_missing: ``prepare_data`` first embeds every protein of every split that the cache lacks, with the
            backbones and layers of ``embeddings`` (``pa_geo.cache.ensure``; one process under DDP).
        graph_cache: folder of the example stores (``<graph_cache>/<task>/<split>/<key>/``, see
            :mod:`pa_geo.datasets.example_store`): built once by ``prepare_data`` and reused by every later run with
            the same task, split, graph settings and data files; None = a temporary folder removed at exit.

    Batches are PyG ``Batch`` es of the task kind's ``TaskData`` with ``batch.task`` / ``batch.split`` set, their
    embeddings and edge features in float16 as stored (``PaGeoModule`` takes float32 on the device); with
    auxiliary tasks the training loader yields ``{task: batch}`` (Lightning's ``max_size_cycle``) and evaluation runs
    one loader per (task, split).
    """

    def __init__(self, task: str, data_root: str, embeddings: list[dict[str, Any]] | None = None,
                 graph: dict[str, Any] | None = None, batch_nodes: int = 4096, num_workers: int = 0, seed: int = 0,
                 max_records: int | None = None, aux_data_roots: dict[str, str | None] | None = None,
                 predict_split: str | None = None, bucket_size: int = 256, graph_cache: str | None = None,
                 table: str | None = None, level: str | None = None, type: str | None = None,
                 label_columns: list[str] | None = None, class_names: list[str] | None = None,
                 mask_symbols: str | None = None, skip_bad: bool | None = None,
                 split_fractions: list[float] | None = None, split_identity: float | None = None,
                 split_coverage: float | None = None, split_method: str | None = None, split_seed: int | None = None,
                 embed_missing: bool = False) -> None:
        super().__init__()
        from pa_geo.tasks import get_kind, get_task

        if batch_nodes < 1:
            raise ConfigError(f"data.batch_nodes must be >= 1, got {batch_nodes}")
        self.save_hyperparameters()
        if table is not None:
            from pa_geo.cache.ensure import drop_structure_sources
            from pa_geo.train.table_task import register_table_task, table_settings

            spec = register_table_task(task, table_settings(table, self.hparams))
            data_root = table
            if not spec.options["has_structures"] and embeddings:
                embeddings, _ = drop_structure_sources(list(embeddings), table)
        self.embed_missing = embed_missing
        self.specs = {task: get_task(task)}
        for name in aux_data_roots or {}:
            self.specs[name] = get_task(name)
        self.kinds = {name: get_kind(spec) for name, spec in self.specs.items()}
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
        self._sources: list[Any] = _embedding_sources(self.embeddings)  # checks names now; stores open lazily
        self.graph_cache = graph_cache
        self._tmp: str | None = None
        self._datasets: dict[tuple[str, str], Any] = {}
        self._resume: tuple[int, int] | None = None

    @property
    def task_names(self) -> list[str]:
        """Primary task first, then the auxiliary tasks."""
        return list(self.specs)

    def records(self, task: str, split: str) -> Iterable:
        """The records of ``task``'s ``split`` as its loader gives them (first ``max_records``; may stream)."""
        records = self.specs[task].load(self.roots[task], split)
        return records if self.max_records is None else itertools.islice(records, self.max_records)

    def proteins(self) -> list:
        """Every distinct protein (by id) of every task and split, in first-seen order: what the embedding cache must
        hold before training (``pa-geo demo`` embeds them; reads each split's records once, streaming)."""
        return list(self.iter_proteins())

    def iter_proteins(self) -> Iterator[Any]:
        """:meth:`proteins` as a stream (memory: the ids seen, not the proteins)."""
        seen: set[str] = set()
        for task, spec in self.specs.items():
            for split in spec.splits:
                for rec in self.records(task, split):
                    if isinstance(rec, Exception):  # a loader's report of an unreadable record
                        continue
                    for p in rec.proteins:
                        if p.id not in seen:
                            seen.add(p.id)
                            yield p

    # ---- example stores -----------------------------------------------------------------------------------------
    def store_root(self) -> Path:
        """``graph_cache``, or a temporary folder (created on first use, removed at exit)."""
        if self.graph_cache is not None:
            return Path(self.graph_cache)
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="pa_geo_examples_")
            atexit.register(shutil.rmtree, self._tmp, True)
        return Path(self._tmp)

    def store_settings(self, task: str, split: str) -> dict[str, Any]:
        """What the store of (task, split) depends on (hashed into its folder name; also in its ``meta.json``)."""
        from pa_geo.datasets.example_store import files_fingerprint

        kind = self.kinds[task]
        return {"version": STORE_VERSION, "task": task, "kind": kind.name, "kind_version": kind.version,
                "split": split, "graph": self.builder.settings, "max_records": self.max_records,
                "data_root": str(self.roots[task].resolve()),
                "data_files": self.specs[task].options.get("data_files") or files_fingerprint(self.roots[task])}

    def store(self, task: str, split: str) -> Any:
        """The :class:`~pa_geo.datasets.example_store.ExampleStore` of ``task``'s ``split``, built on first use."""
        from pa_geo.datasets.example_store import ExampleStore, build_store
        from pa_geo.tasks.losses import TargetStats

        settings = self.store_settings(task, split)
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = self.store_root() / task / split / key
        if (path / "meta.json").exists():
            return ExampleStore(path)
        kind, spec = self.kinds[task], self.specs[task]
        acc = {"target_stats": TargetStats()} if split == spec.train_split and spec.label_type == "regression" else {}
        return build_store(path, self.records(task, split), functools.partial(kind.to_data, graphs=self.builder),
                           kind.num_nodes, settings, what=f"{task}/{split}", accumulators=acc)

    def prepare_data(self) -> None:
        """With ``embed_missing``: embed what the cache lacks. With ``graph_cache``: build every split's store once
        (one process; the ranks then read them)."""
        if self.embed_missing:
            self.embed()
        if self.graph_cache is None:
            return
        for task, spec in self.specs.items():
            for split in spec.splits:
                self.store(task, split)

    def embed(self, progress: bool = True) -> Any:
        """Embed every protein of every task and split that the cache lacks (``data.embeddings``' backbones and
        layers); returns the :class:`~pa_geo.cache.ensure.EnsureReport`. Proteins a backbone refuses: a table with
        ``skip_bad`` skips their rows, anything else is a one-line :class:`DatasetError`."""
        from pa_geo.cache.ensure import build_backbones, embed_missing
        from pa_geo.train.table_task import exclude_proteins

        report = embed_missing(build_backbones(self.embeddings), self.iter_proteins(), progress=progress)
        if report.refused and not exclude_proteins(self.task, report.refused):
            backbone, pid, reason = report.refused[0]
            raise DatasetError(f"{len(report.refused)} protein(s) could not be embedded; first: {pid} ({backbone}): "
                               f"{reason}" + ("; --data.skip_bad true skips their rows" if self.hparams.table else ""))
        return report

    def dataset(self, task: str, split: str) -> Any:
        """The :class:`~pa_geo.datasets.example_store.StoredDataset` of ``task``'s ``split`` (store built on first
        use; the embedding transform attached; the kind's epoch hook on training splits)."""
        key = (task, split)
        if key not in self._datasets:
            from pa_geo.datasets.embedded import AttachEmbeddings
            from pa_geo.datasets.example_store import StoredDataset

            kind = self.kinds[task]
            transform = AttachEmbeddings(self._sources) if self._sources else None
            self._datasets[key] = StoredDataset(self.store(task, split), functools.partial(kind.prepare, seed=self.seed),
                                                transform, epoch_aware=split == self.specs[task].train_split,
                                                keep_half=True)
        return self._datasets[key]

    def target_stats(self, task: str) -> tuple[float, float] | None:
        """(mean, std) of a regression task's training labels (from its train store; None for other tasks)."""
        spec = self.specs[task]
        if spec.label_type != "regression":
            return None
        stats = self.dataset(task, spec.train_split).meta.get("target_stats")
        return None if stats is None else (float(stats[0]), float(stats[1]))

    def eval_splits(self, stage: str) -> list[tuple[str, str]]:
        """(task, split) pairs evaluated by ``stage`` (``validate`` | ``test``), primary task first."""
        if stage == "validate":
            return [(t, s.valid_split) for t, s in self.specs.items()]
        return [(t, split) for t, s in self.specs.items() for split in s.test_splits]

    def setup(self, stage: str | None = None) -> None:
        """Open (building if needed) the stores ``stage`` needs; then check that the embedding cache has every backbone
        and layer of ``embeddings`` (one line in this process, before any DataLoader worker starts)."""
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
        for source in self._sources:
            source.resolved_layers()

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next training loaders start at ``epoch``, leaving out its first ``batches`` batches (a run resumed from
        a checkpoint: ``pa_geo.train.resume.ResumeState``)."""
        self._resume = (int(epoch), int(batches))

    def _loader(self, task: str, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(task, split)
        sampler = NodeBudgetBatchSampler(ds.sizes, self.batch_nodes, shuffle=shuffle, seed=self.seed,
                                         bucket_size=self.bucket_size, with_epoch=shuffle)
        resume = self._resume
        if shuffle and resume is not None:
            sampler.set_epoch(resume[0])
            sampler.skip_next(resume[1] % max(1, len(sampler)))  # a shorter, cycled loader (multi-task) wraps
        # its own generator: starting workers draws their seeds from it, never from the global one that dropout
        # uses, so a resumed run's random draws match the uninterrupted run's (pa_geo.train.resume)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=TaskCollater(task, split),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        """The primary task's training loader, or ``{task: loader}`` for multi-task training."""
        loaders = {t: self._loader(t, s.train_split, True) for t, s in self.specs.items()}
        self._resume = None
        return loaders[self.task] if len(loaders) == 1 else loaders

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per task's validation split."""
        return [self._loader(t, s, False) for t, s in self.eval_splits("validate")]

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per (task, test split)."""
        return [self._loader(t, s, False) for t, s in self.eval_splits("test")]

    def predict_dataloader(self) -> DataLoader:
        """The primary task's ``predict_split``."""
        return self._loader(self.task, self.predict_split, False)
