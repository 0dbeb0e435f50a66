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

from pa_geo.cache.ensure import SOURCE_KEYS, EnsureReport, SourceConfig, build_backbones, embed_missing, keep_levels
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource
from pa_geo.datasets.example_store import ExampleStore, StoredDataset, build_store, files_fingerprint
from pa_geo.errors import ConfigError, DatasetError
from pa_geo.io.protein import Protein
from pa_geo.tables import LabelTable, TableSettings
from pa_geo.tables.task import settings_record, table_task_spec
from pa_geo.tasks import get_kind, get_task
from pa_geo.tasks.losses import TargetStats
from pa_geo.tasks.spec import TaskSpec, spec_from_record, spec_record
from pa_geo.train.collate import TaskCollater
from pa_geo.train.graph_builder import GraphBuilder
from pa_geo.train.levels import Level, embedding_levels, field_levels
from pa_geo.train.predict_inputs import PredictInputs
from pa_geo.train.sampler import NodeBudgetBatchSampler
from pa_geo.train.shared_batches import WithAuxLabels

STORE_VERSION = 1
INPUT_SPLIT = "input"  # the pseudo-split of predict_inputs


def source_configs(embeddings: list[dict[str, Any]]) -> list[SourceConfig]:
    """``data.embeddings`` checked (keys, known backbone names) as :class:`SourceConfig` s."""
    out = []
    for i, entry in enumerate(embeddings):
        if not {"cache", "backbone", "layers"} <= set(entry) or set(entry) - set(SOURCE_KEYS):
            raise ConfigError(f"data.embeddings[{i}] must have the keys cache, backbone, layers (and optionally "
                              f"options); got {', '.join(sorted(entry))}")
        source = SourceConfig.of(entry)
        source.level  # noqa: B018 - an unknown backbone is a one-line ConfigError here
        out.append(source)
    return out


class PaGeoDataModule(pl.LightningDataModule):
    """Examples of one primary task (and optional auxiliary tasks) for training, evaluation and prediction.

    Args:
        task: primary task name (``pa_geo.tasks.get_task``), or the name a label table's task gets.
        data_root: directory with the task's released files.
        embeddings: frozen-backbone inputs, each ``{cache: <cache root>, backbone: <name>, layers: [int, ...]}``
            (+ ``options``: the backbone's keyword arguments, e.g. ``{model: ...}`` for ``hf``); attached per example
            as ``emb_<backbone>_<layer>`` node fields by one transform (read-only LMDB: DDP ranks and workers share
            one cache). Sources of a backbone level the task cannot read are left out (``TaskSpec.backbone_levels``:
            no structure level without coordinates), with one log line.
        graph: ``{kind: residue | atom, ...builder kwargs, ligand: {...atom-graph kwargs}}``.
        batch_nodes: node budget of a batch (all graphs of an example count).
        num_workers: DataLoader workers.
        seed: seed of the batch shuffles and of per-epoch draws (ATOM3D PPI pairs).
        max_records: keep only the first ``max_records`` records of every split (quick runs), None = all.
        aux_data_roots: auxiliary tasks of multi-task training: ``{task name: data root or None (= data_root)}``
            (the loss weights live in ``model.aux_tasks``; a different name, so Lightning can merge both hparams).
        predict_split: split written by ``predict`` (default: the primary task's first test split).
        bucket_size: examples per length-sorted shuffle bucket.
        graph_cache: folder of the example stores (``<graph_cache>/<task>/<split>/<key>/``, see
            :mod:`pa_geo.datasets.example_store`): built once by ``prepare_data`` and reused by every later run with
            the same task, split, graph settings and data files; None = a temporary folder removed at exit.
        table: a label table (CSV / TSV / Parquet) to train on instead of a registered task
            (:class:`~pa_geo.tables.TableSettings`: ``path``, ``level``, ``type``, split options, ...); its task is
            named ``task`` and is not registered: the model gets it from here (:attr:`task_spec_record`).
            ``data_root`` is then unused.
        task_record: the task as plain values (:func:`pa_geo.tasks.spec.spec_record`) instead of a registered name:
            a checkpoint's task, which predicts ``predict_inputs`` and has no splits to read.
        embed_missing: ``prepare_data`` first embeds every protein of every split that the cache lacks, with the
            backbones and layers of ``embeddings`` (``pa_geo.cache.ensure``; one process under DDP).
        extra_levels: node fields besides the embeddings that the encoder reads as levels (fields the graph recipe
            puts on every residue): a list of names whose widths the graph schema declares (``[geom]``,
            :data:`pa_geo.graphs.schema.FIELD_WIDTHS`) or ``{field: width}`` (:func:`pa_geo.train.levels.field_levels`).
        aux_shared_batches: auxiliary tasks whose training records are the primary task's (same ids, same order:
            e.g. two labels of the same chains) train on the primary's batches, which carry their labels
            (:mod:`pa_geo.train.shared_batches`): one encoder pass per step for every head, instead of one batch per
            task. Evaluation is unchanged.
        predict_inputs: structure files, FASTA files, tables or folders that ``predict`` reads instead of
            ``predict_split`` (:mod:`pa_geo.train.predict_inputs`; rows per input in input order, residue rows with
            chain, number, insertion code and residue).

    Batches are PyG ``Batch`` es of the task kind's ``TaskData`` with ``batch.task`` / ``batch.split`` set, their
    embeddings and edge features in float16 as stored (``PaGeoModule`` takes float32 on the device); with
    auxiliary tasks the training loader yields ``{task: batch}`` (Lightning's ``max_size_cycle``), or with
    ``aux_shared_batches`` the primary's batches with every task's labels, and evaluation runs one loader per
    (task, split).
    """

    def __init__(self, task: str, data_root: str = ".", embeddings: list[dict[str, Any]] | None = None,
                 graph: dict[str, Any] | None = None, batch_nodes: int = 4096, num_workers: int = 0, seed: int = 0,
                 max_records: int | None = None, aux_data_roots: dict[str, str | None] | None = None,
                 predict_split: str | None = None, bucket_size: int = 256, graph_cache: str | None = None,
                 table: TableSettings | None = None, embed_missing: bool = False,
                 extra_levels: dict[str, int | None] | list[str] | None = None,
                 predict_inputs: list[str] | None = None,
                 task_record: dict[str, Any] | None = None, aux_shared_batches: bool = False) -> None:
        super().__init__()
        if batch_nodes < 1:
            raise ConfigError(f"data.batch_nodes must be >= 1, got {batch_nodes}")
        self.save_hyperparameters(ignore=["table"])
        self.hparams["table"] = settings_record(table) if table is not None else None  # plain values in checkpoints
        self.table = LabelTable(table) if table is not None else None
        if self.table is not None:
            spec, data_root = table_task_spec(self.table, task), str(self.table.settings.path)
        else:
            spec = spec_from_record(task_record) if task_record is not None else get_task(task)
        self.embed_missing = embed_missing
        self.specs: dict[str, TaskSpec] = {task: spec}
        for name in aux_data_roots or {}:
            self.specs[name] = get_task(name)
        self.kinds = {name: get_kind(s) for name, s in self.specs.items()}
        self.task = task
        self.roots = {task: Path(data_root)}
        self.roots.update({k: Path(v or data_root) for k, v in (aux_data_roots or {}).items()})
        why = f"{self.table.settings.path} has no structures" if self.table is not None and not spec.has_structures \
            else f"task {task} reads {' and '.join(spec.backbone_levels)} embeddings"
        sources = keep_levels(source_configs(embeddings), spec.backbone_levels, why)[0] if embeddings else []
        self.sources: list[SourceConfig] = sources
        self.embeddings = [s.as_dict() for s in sources]
        self.levels: list[Level] = embedding_levels(sources) + field_levels(extra_levels)
        self.builder = GraphBuilder(**dict(graph or {}))
        self.batch_nodes, self.num_workers, self.seed = batch_nodes, num_workers, seed
        self.max_records, self.bucket_size = max_records, bucket_size
        if predict_split is not None and predict_split not in spec.splits:
            raise ConfigError(f"data.predict_split {predict_split!r} is not a split of {task}: "
                              f"{', '.join(spec.splits)}")
        self.predict_split = predict_split or (spec.test_splits or spec.splits[-1:])[0]
        self.inputs = PredictInputs(predict_inputs, spec) if predict_inputs else None
        self._sources = [EmbeddingSource(s.cache, s.backbone, list(s.layers)) for s in sources]  # open lazily
        self.graph_cache = graph_cache
        self._tmp: str | None = None
        self._datasets: dict[tuple[str, str], Any] = {}
        self._resume: tuple[int, int] | None = None
        self.aux_shared_batches = bool(aux_shared_batches) and len(self.specs) > 1

    @property
    def task_names(self) -> list[str]:
        """Primary task first, then the auxiliary tasks."""
        return list(self.specs)

    @property
    def task_spec_record(self) -> dict[str, Any] | None:
        """The primary task's spec as plain values when it is not a registered task (a label table), else None:
        what the model stores as ``task_spec`` so that a checkpoint rebuilds the task."""
        return spec_record(self.specs[self.task]) if self.table is not None else None

    def records(self, task: str, split: str) -> Iterable:
        """The records of ``task``'s ``split`` as its loader gives them (first ``max_records``; may stream)."""
        if split == INPUT_SPLIT and self.inputs is not None:
            return self.inputs.records
        records = self.specs[task].load(self.roots[task], split)
        return records if self.max_records is None else itertools.islice(records, self.max_records)

    def proteins(self) -> list[Protein]:
        """Every distinct protein (by id) of every task and split (of the inputs, with ``predict_inputs``), in
        first-seen order: what the embedding cache must hold (``pa-geo demo`` embeds them; streams the splits)."""
        return list(self.iter_proteins())

    def iter_proteins(self) -> Iterator[Protein]:
        """:meth:`proteins` as a stream (memory: the ids seen, not the proteins)."""
        pairs = [(self.task, INPUT_SPLIT)] if self.inputs is not None else \
            [(task, split) for task, spec in self.specs.items() for split in spec.splits]
        seen: set[str] = set()
        for task, split in pairs:
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
        kind = self.kinds[task]
        files = self.inputs.fingerprint() if split == INPUT_SPLIT and self.inputs is not None else \
            self.specs[task].options.get("data_files") or files_fingerprint(self.roots[task])
        return {"version": STORE_VERSION, "task": task, "kind": kind.name, "kind_version": kind.version,
                "split": split, "graph": self.builder.settings, "max_records": self.max_records,
                "data_root": str(self.roots[task].resolve()), "data_files": files}

    def store(self, task: str, split: str) -> ExampleStore:
        """The :class:`~pa_geo.datasets.example_store.ExampleStore` of ``task``'s ``split``, built on first use."""
        settings = self.store_settings(task, split)
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = self.store_root() / task / split / key
        if (path / "meta.json").exists():
            return ExampleStore(path)
        kind, spec = self.kinds[task], self.specs[task]
        acc = {"target_stats": TargetStats()} if split == spec.train_split and spec.label_type == "regression" else {}
        to_data = kind.to_input_data if split == INPUT_SPLIT else kind.to_data
        return build_store(path, self.records(task, split), functools.partial(to_data, graphs=self.builder),
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

    def embed(self, progress: bool = True, built: list[Any] | None = None) -> EnsureReport:
        """Embed every protein :meth:`iter_proteins` gives that the cache lacks (``data.embeddings``' backbones and
        layers, or the already ``built`` ``(source, backbone)`` pairs); returns the
        :class:`~pa_geo.cache.ensure.EnsureReport`. Proteins a backbone refuses: their inputs or, for a table with
        ``skip_bad``, their rows are left out; anything else is a one-line :class:`DatasetError`."""
        report = embed_missing(built or build_backbones(self.embeddings), self.iter_proteins(), progress=progress)
        if not report.refused:
            return report
        reasons = {pid: f"{backbone} refused it: {reason}" for backbone, pid, reason in report.refused}
        if self.inputs is not None:
            self.inputs.exclude(reasons)
        elif self.table is not None and self.table.settings.skip_bad:
            self.table.exclude(reasons)
        else:
            backbone, pid, reason = report.refused[0]
            raise DatasetError(f"{len(report.refused)} protein(s) could not be embedded; first: {pid} ({backbone}): "
                               f"{reason}" + ("; --data.table.skip_bad true skips their rows" if self.table else ""))
        return report

    def dataset(self, task: str, split: str) -> StoredDataset:
        """The :class:`~pa_geo.datasets.example_store.StoredDataset` of ``task``'s ``split`` (store built on first
        use; the embedding transform attached; the kind's epoch hook on training splits)."""
        key = (task, split)
        if key not in self._datasets:
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

    @property
    def predicted_split(self) -> str:
        """What ``predict`` reads: the inputs, or ``predict_split``."""
        return INPUT_SPLIT if self.inputs is not None else self.predict_split

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
            self.dataset(self.task, self.predicted_split)
            if self.inputs is not None:
                self.inputs.skipped_in(self.dataset(self.task, INPUT_SPLIT).meta)
        for source in self._sources:
            source.resolved_layers()

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next training loaders start at ``epoch``, leaving out its first ``batches`` batches (a run resumed from
        a checkpoint: ``pa_geo.train.resume.ResumeState``)."""
        self._resume = (int(epoch), int(batches))

    def _loader(self, task: str, split: str, shuffle: bool, aux: dict[str, Any] | None = None) -> DataLoader:
        ds = self.dataset(task, split) if not aux else WithAuxLabels(self.dataset(task, split), aux)
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
        if self.aux_shared_batches:
            aux = {t: self.dataset(t, s.train_split) for t, s in self.specs.items() if t != self.task}
            loader = self._loader(self.task, self.specs[self.task].train_split, True, aux)
            self._resume = None
            return loader
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
        """The primary task's ``predict_split``, or the ``predict_inputs``."""
        return self._loader(self.task, self.predicted_split, False)

    def prediction_rows(self, frame: Any) -> Any:
        """The prediction rows ``predict`` writes: of the inputs, in input order with residue columns
        (:meth:`PredictInputs.rows`); of a split, as the task kind made them."""
        return self.inputs.rows(frame, self.builder.kind == "atom") if self.inputs is not None else frame
