"""Embedding on many devices / nodes through Lightning's ``Trainer.predict``.

    pa-geo embed --backbone esm2 --input data/ --cache cache/ --devices 4 --strategy ddp [--num_nodes 2]

Every rank reads the inputs and the target cache (read-only) and makes the same plan and the same length-sorted
batches; rank ``r`` of ``W`` embeds batches ``r, r + W, ...`` (similar work per rank). :class:`ShardWriter` commits
each batch of a rank to that rank's own LMDB shard ``<cache>/.shards/<run>/rank<r>/`` (one transaction per batch,
in a background thread), so ranks never contend for a lock and a killed run keeps what it committed. At the end
all ranks meet at a barrier and global rank 0 merges the shards into the target cache
(:func:`pa_geo.cache.merge.merge_caches`) and removes them. With several nodes ``--cache`` must be on a filesystem
every node sees. A rerun with the same inputs finds the same shard directory and skips what it holds.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from pa_geo.backbones.base import Backbone, Layer
from pa_geo.cache.merge import merge_caches
from pa_geo.cache.runner import (Committer, EmbedPlan, EmbedSummary, cached_flags, outcome_items, plan_embedding,
                                 prepared_batches, run_batch)
from pa_geo.cache.store import EmbeddingStore, store_dirname
from pa_geo.errors import CacheError
from pa_geo.io.protein import Protein

Entry = tuple[Protein, dict[Layer, bytes]]


def _identity(x: Any) -> Any:
    return x


class _RankBatches(torch.utils.data.IterableDataset):
    """A rank's batches as ``(entries, prepared)``, the next one featurised in a background thread."""

    def __init__(self, backbone: Backbone, groups: list[list[Entry]]) -> None:
        self.backbone, self.groups = backbone, groups

    def __iter__(self):
        stream = prepared_batches(self.backbone, [[p for p, _ in g] for g in self.groups])
        for entries, (_, prepared) in zip(self.groups, stream):
            yield entries, prepared

    def __len__(self) -> int:
        return len(self.groups)


class EmbedModule(pl.LightningModule):
    """Any frozen :class:`~pa_geo.backbones.base.Backbone` under ``Trainer.predict``: a predict step embeds one
    batch (a failing batch is retried protein by protein, as in the single-process runner) and returns per
    protein ``{layer: [L, D]}`` or a one-line refusal reason.

    Args:
        backbone: the frozen encoder (Lightning moves it to the rank's device).
        groups: ALL batches of the run (same on every rank); rank ``r`` of ``W`` takes ``groups[r::W]``.
    """

    def __init__(self, backbone: Backbone, groups: list[list[Entry]]) -> None:
        super().__init__()
        self.backbone = backbone
        self.groups = groups

    def predict_dataloader(self) -> torch.utils.data.DataLoader:
        mine = self.groups[self.trainer.global_rank::self.trainer.world_size]
        return torch.utils.data.DataLoader(_RankBatches(self.backbone, mine), batch_size=None, collate_fn=_identity)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch  # the backbone moves its own inputs

    def predict_step(self, batch: tuple[list[Entry], Any], batch_idx: int) -> list[dict[Layer, torch.Tensor] | str]:
        entries, prepared = batch
        return run_batch(self.backbone, [p for p, _ in entries], prepared)


class ShardWriter(BasePredictionWriter):
    """Commits each predicted batch to ``<shard_root>/rank<r>/<backbone>`` (one LMDB transaction per batch, in
    a background thread); at the end of predict every rank records its outcome, all meet at a barrier, and
    global rank 0 merges the shards into ``cache`` and deletes them."""

    def __init__(self, backbone: Backbone, cache: Path, shard_root: Path, dtype: str) -> None:
        super().__init__(write_interval="batch")
        self.backbone, self.cache, self.shard_root, self.dtype = backbone, Path(cache), Path(shard_root), dtype
        self.summary = EmbedSummary()
        self._store: EmbeddingStore | None = None
        self._committer: Committer | None = None

    def rank_dir(self, rank: int) -> Path:
        return self.shard_root / f"rank{rank}"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bb = self.backbone
        self._store = EmbeddingStore.for_backbone(self.rank_dir(trainer.global_rank), bb.registry_name,
                                                  readonly=False, dtype=self.dtype)  # type: ignore[arg-type]
        self._store.register(bb.registry_name, bb.id, bb.level, {layer: bb.dims[layer] for layer in bb.layers})
        self._committer = Committer(self._store)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        entries, _ = batch
        self._committer.submit(outcome_items(self.backbone, entries, prediction, self.summary))

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._committer.close()
        self._store.close()
        record = {"embedded": self.summary.embedded, "residues": self.summary.residues,
                  "refused": self.summary.refused}
        (self.rank_dir(trainer.global_rank) / "outcome.json").write_text(json.dumps(record))
        trainer.strategy.barrier("pa_geo_embed_shards_written")
        if trainer.is_global_zero:
            self.merge(trainer.world_size)
        trainer.strategy.barrier("pa_geo_embed_merged")

    @property
    def outcome_file(self) -> Path:
        """Where rank 0 leaves the merged outcome for the launching process (``<shard root>.json``)."""
        return self.shard_root.with_name(self.shard_root.name + ".json")

    def merge(self, world_size: int) -> None:
        """Merge every rank's shard into the cache, write the summed outcomes to :attr:`outcome_file`, drop the
        shards."""
        ranks = [self.rank_dir(r) for r in range(world_size)]
        missing = [str(d) for d in ranks if not (d / "outcome.json").is_file()]
        if missing:
            raise CacheError(f"shards without an outcome (not on a shared filesystem?): {', '.join(missing)}")
        merge_caches(ranks, self.cache)
        total = {"embedded": 0, "residues": 0, "refused": []}
        for d in ranks:
            rec = json.loads((d / "outcome.json").read_text())
            for k in total:
                total[k] += rec[k]
        tmp = self.outcome_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(total))
        tmp.replace(self.outcome_file)
        shutil.rmtree(self.shard_root, ignore_errors=True)


def shard_root_for(cache: Path, backbone: Backbone, plan: EmbedPlan) -> Path:
    """``<cache>/.shards/<run>``: the run id hashes the backbone id and the planned keys, so every rank (and a
    rerun of the same job) finds the same directory."""
    h = hashlib.sha256(backbone.id.encode())
    for _, keys in plan.todo:
        h.update(next(iter(keys.values())))
    return Path(cache) / ".shards" / f"{store_dirname(backbone.registry_name)}-{h.hexdigest()[:16]}"


def _skip_shard_entries(backbone: Backbone, plan: EmbedPlan, shard_root: Path) -> None:
    """Move what a killed earlier run of the same job already committed to its shards out of ``plan.todo``."""
    done: set[int] = set()
    for d in sorted(shard_root.glob("rank*/" + store_dirname(backbone.registry_name))):
        if (d / "data.mdb").is_file():
            with EmbeddingStore(d, readonly=True) as st:
                flags = cached_flags(st, plan.todo)
            done |= {i for i, f in enumerate(flags) if f}
    plan.todo = [t for i, t in enumerate(plan.todo) if i not in done]
    plan.summary.cached += len(done)


def embed_distributed(backbone: Backbone, proteins: Sequence[Protein], cache: str | Path,
                      batch_tokens: int | None = None, dtype: str = "fp16", devices: int | str = "auto",
                      num_nodes: int = 1, strategy: str = "auto", accelerator: str = "auto",
                      progress: bool = True) -> EmbedSummary | None:
    """Embed ``proteins`` into ``cache`` on ``devices`` x ``num_nodes`` ranks with Lightning (see module doc).

    Returns the run's :class:`EmbedSummary` on global rank 0 (after the merge) and None on the other ranks.
    ``batch_tokens`` None = the backbone's default for the device type Lightning picks.
    """
    cache = Path(cache)
    target = cache / store_dirname(backbone.registry_name)
    t0 = time.perf_counter()
    store = EmbeddingStore(target, readonly=True) if (target / "data.mdb").is_file() else None
    try:
        if store is not None and store.meta is not None and store.meta.backbone_id != backbone.id:
            raise CacheError(f"{target}: holds embeddings of {store.meta.backbone_id}, not {backbone.id}; use "
                             f"another --cache directory for these weights")
        plan = plan_embedding(backbone, proteins, store)
    finally:
        if store is not None:
            store.close()
    if not plan.todo:  # every rank sees the same plan: nothing to launch
        return plan.finish(time.perf_counter() - t0)
    shard_root = shard_root_for(cache, backbone, plan)
    _skip_shard_entries(backbone, plan, shard_root)
    writer = ShardWriter(backbone, cache, shard_root, dtype)
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                         logger=False, enable_checkpointing=False, enable_model_summary=False,
                         enable_progress_bar=progress, use_distributed_sampler=False, callbacks=[writer])
    if batch_tokens is None:
        table = backbone.batch_tokens_by_device
        batch_tokens = int(table.get(trainer.strategy.root_device.type, table.get("*", 4096)))
    module = EmbedModule(backbone, plan.batches(batch_tokens, backbone.max_residues()))
    trainer.predict(module, return_predictions=False)
    if not trainer.is_global_zero:
        return None
    outcome = json.loads(writer.outcome_file.read_text())  # written by global rank 0 (this process or a child)
    writer.outcome_file.unlink()
    plan.summary.embedded += outcome["embedded"]
    plan.summary.residues += outcome["residues"]
    plan.summary.refused += [tuple(r) for r in outcome["refused"]]
    return plan.finish(time.perf_counter() - t0)
