"""The batched embed runner: every protein through a frozen backbone once, straight into the LMDB store.

What is already cached (and passes its checksum) is skipped; the rest is sorted by length and cut into batches
under a padded-token budget (like fair-esm's ``toks_per_batch``; by default the backbone's measured budget for
its device); chains longer than the budget or than the backbone's ``max_residues()`` go alone (the backbone windows
them). I/O overlaps the model: while batch ``i`` runs, a background thread featurises batch ``i + 1``
(:meth:`Backbone.prepare`) and another encodes and commits batch ``i - 1``. Each batch is committed in one LMDB
transaction and a batch is handed to the writer only after the previous commit finished, so a killed run loses
at most the batch being committed and the one being computed, never a committed entry, and a rerun picks up
where it stopped.
"""
from __future__ import annotations

import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from pa_geo.backbones.base import Backbone, Layer, Prepared
from pa_geo.batching import pack_by_budget
from pa_geo.cache.keys import protein_keys, shard_of
from pa_geo.cache.store import CorruptEntry, EmbeddingStore, check_entry
from pa_geo.errors import CacheError
from pa_geo.io.protein import Protein

_CHECK_CHUNK = 512


@dataclass
class EmbedSummary:
    """Outcome of :func:`embed_proteins` over the proteins of this shard.

    ``embedded``: proteins computed now; ``cached``: already in the store (or a duplicate of one in this run);
    ``refused``: ``(protein id, one-line reason)``; ``residues_per_s``: residues embedded per second of wall time
    spent in the backbone and commits; ``other_shards``: proteins left to the other shards.
    """

    embedded: int = 0
    cached: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    residues_per_s: float = 0.0
    residues: int = 0
    seconds: float = 0.0
    other_shards: int = 0


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no message"
    return f"{type(err).__name__}: {text}"[:300]


def _refusal(backbone: Backbone, protein: Protein) -> str | None:
    if len(protein) == 0:
        return "empty sequence"
    if backbone.level == "structure":
        if not protein.has_structure:
            return f"{backbone.registry_name} needs coordinates; sequence-only input"
        if not protein.backbone_mask.any():
            return f"{backbone.registry_name} needs coordinates; no backbone atom present"
    return None


MAX_PADDING = 0.05


def make_batches(lengths: Sequence[int], batch_tokens: int, max_residues: int | None = None,
                 max_padding: float = MAX_PADDING) -> list[list[int]]:
    """Indices grouped into batches, longest first, with ``len(batch) * max length <= batch_tokens`` and at
    most ``max_padding`` of each batch's padded residues being padding.

    A chain with ``length >= batch_tokens`` or ``length > max_residues`` forms a batch of its own. The padding cap
    matters: on CPU a padded residue costs as much as a real one (ESM-1b, 16 real chains, 1 thread: one chain per
    forward 56 s, 4096-residue batches without a cap 76 s).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return pack_by_budget(lengths, batch_tokens, order, padded=True, max_padding=max_padding,
                          alone=lambda n: n >= batch_tokens or (max_residues is not None and n > max_residues))


def _check_output(backbone: Backbone, protein: Protein, out: dict[Layer, torch.Tensor]) -> str | None:
    for layer in backbone.layers:
        t = out.get(layer)
        if t is None:
            return f"backbone returned no layer {layer}"
        if tuple(t.shape) != (len(protein), backbone.dims[layer]):
            return f"layer {layer}: shape {tuple(t.shape)}, expected ({len(protein)}, {backbone.dims[layer]})"
        if not torch.isfinite(t).all():
            return f"layer {layer}: non-finite values"
    return None


def _prepare(backbone: Backbone, batch: list[Protein]) -> Prepared | BaseException:
    """:meth:`Backbone.prepare` of a batch, or the exception it raised (re-raised on the model thread)."""
    try:
        return backbone.prepare(batch)
    except Exception as err:  # noqa: BLE001 - handled by run_batch
        return err


def prepared_batches(backbone: Backbone, batches: Sequence[list[Protein]]
                     ) -> Iterator[tuple[list[Protein], Prepared | BaseException]]:
    """``(batch, backbone.prepare(batch) or the exception it raised)`` in order, the next batch featurised in a
    background thread while the caller runs the model on the current one."""
    with ThreadPoolExecutor(1, "pa_geo-prepare") as pool:
        upcoming = pool.submit(_prepare, backbone, batches[0]) if batches else None
        for b, batch in enumerate(batches):
            prepared = upcoming.result()
            if b + 1 < len(batches):
                upcoming = pool.submit(_prepare, backbone, batches[b + 1])
            yield batch, prepared


class Committer:
    """Writes batches to a store in a background thread, ONE commit in flight: :meth:`submit` first waits for
    the previous commit (and re-raises its error), so a crash never loses more than that batch and the one
    being computed. Use as a context manager (leaving it waits for the last commit)."""

    def __init__(self, store: EmbeddingStore) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, "pa_geo-commit")
        self._pending: Future | None = None

    def wait(self) -> None:
        """Block until the pending commit is done; re-raises its exception."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def submit(self, items: list[tuple[bytes, torch.Tensor]]) -> None:
        """Commit ``(key, [L, D] tensor)`` pairs in one transaction, in the background."""
        self.wait()
        if items:
            self._pending = self._pool.submit(self.store.put_many, items)

    def close(self) -> None:
        """Wait for the last commit and stop the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()

    def __enter__(self) -> "Committer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def outcome_items(backbone: Backbone, entries: Sequence[tuple[Protein, dict[Layer, bytes]]],
                  results: Sequence[dict[Layer, torch.Tensor] | str], summary: "EmbedSummary"
                  ) -> list[tuple[bytes, torch.Tensor]]:
    """The ``(key, embedding)`` pairs of a batch's successful proteins; refusals and counts go to ``summary``."""
    items = []
    for (p, keys), res in zip(entries, results):
        if isinstance(res, str):
            summary.refused.append((p.id, res))
            continue
        items.extend((keys[layer], res[layer]) for layer in backbone.layers)
        summary.embedded += 1
        summary.residues += len(p)
    return items


def run_batch(backbone: Backbone, batch: list[Protein],
              prepared: Prepared | BaseException | None = None) -> list[dict[Layer, torch.Tensor] | str]:
    """Per protein of ``batch`` its ``{layer: [L, D]}`` output or a one-line refusal reason (``prepared``: the
    batch's :meth:`Backbone.prepare` result, made here when None); a failing batch is retried protein by
    protein."""
    try:
        if prepared is None:
            prepared = backbone.prepare(batch)
        if isinstance(prepared, BaseException):
            raise prepared
        outs = backbone.run(prepared)
        if len(outs) != len(batch):
            raise RuntimeError(f"backbone returned {len(outs)} outputs for {len(batch)} proteins")
    except Exception as err:  # noqa: BLE001 - a bad protein must not stop the run; it is reported
        if len(batch) == 1:
            return [_one_line(err)]
        return [r for p in batch for r in run_batch(backbone, [p])]
    return [_check_output(backbone, p, o) or o for p, o in zip(batch, outs)]


def _open_store(backbone: Backbone, cache: EmbeddingStore | str | Path, dtype: str) -> EmbeddingStore:
    if isinstance(cache, EmbeddingStore):
        if cache.readonly:
            raise CacheError(f"{cache.path}: the embed runner needs a writable store")
        return cache
    return EmbeddingStore.for_backbone(cache, backbone.registry_name, readonly=False,
                                       dtype=dtype)  # type: ignore[arg-type]


def cached_flags(store: EmbeddingStore, todo: list[tuple[Protein, dict[Layer, bytes]]]) -> list[bool]:
    """Whether every layer of each protein is stored intact; damaged entries are reported and will be recomputed."""
    flags: list[bool] = []
    for start in range(0, len(todo), _CHECK_CHUNK):
        chunk = todo[start:start + _CHECK_CHUNK]
        raws = store.get_raw_many([k for _, keys in chunk for k in keys.values()])
        pos = 0
        for protein, keys in chunk:
            ok = True
            for layer, key in keys.items():
                raw = raws[pos]
                pos += 1
                if raw is None:
                    ok = False
                    continue
                try:
                    _, rows, _ = check_entry(raw, f"protein {protein.id} layer {layer} (key {key.hex()[:16]})")
                    if rows != len(protein):
                        raise CorruptEntry(f"protein {protein.id} layer {layer}: {rows} rows for "
                                           f"{len(protein)} residues")
                except CorruptEntry as err:
                    warnings.warn(f"corrupt cache entry in {store.path}: {err}; recomputing", stacklevel=3)
                    ok = False
            flags.append(ok)
    return flags


def embed_proteins(backbone: Backbone, proteins: Sequence[Protein], cache: EmbeddingStore | str | Path,
                   batch_tokens: int | None = None, shard: tuple[int, int] | None = None,
                   progress: bool = True, dtype: str = "fp16") -> EmbedSummary:
    """Embed every protein of this shard that the store lacks and commit each batch in one transaction.

    Args:
        backbone: a frozen :class:`~pa_geo.backbones.base.Backbone`; its ``layers`` are stored, each ``[L, D]``.
        proteins: inputs; duplicates (same content) are embedded once.
        cache: a cache root directory (the backbone's store is ``<root>/<name>``) or a writable store.
        batch_tokens: padded residues per forward pass (``len(batch) * longest``); None = the backbone's
            :meth:`~pa_geo.backbones.base.Backbone.default_batch_tokens` for its device.
        shard: ``(i, n)`` embeds only proteins whose content hash mod ``n`` is ``i``; ``n`` runs fill one cache.
        progress: show a tqdm bar in residues/s.
        dtype: ``"fp16"`` (default) or ``"fp32"`` storage, used when ``cache`` is a path.
    """
    if batch_tokens is None:
        batch_tokens = backbone.default_batch_tokens()
    if batch_tokens < 1:
        raise CacheError(f"batch_tokens must be >= 1, got {batch_tokens}")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise CacheError(f"invalid shard {shard[0]}/{shard[1]}: need 0 <= I < N")
    store = _open_store(backbone, cache, dtype)
    try:
        return _embed_into(backbone, proteins, store, batch_tokens, shard, progress)
    finally:
        if store is not cache:
            store.close()


@dataclass
class EmbedPlan:
    """What a run must compute: ``todo`` ``(protein, {layer: key})`` not yet in the store (deduplicated),
    ``duplicates`` ``(first key, protein id)`` of proteins sharing content with one in ``todo`` or the store,
    and the ``summary`` so far (cached, refused, other shards)."""

    todo: list[tuple[Protein, dict[Layer, bytes]]]
    duplicates: list[tuple[bytes, str]]
    summary: EmbedSummary

    def batches(self, batch_tokens: int, max_residues: int | None) -> list[list[tuple[Protein, dict[Layer, bytes]]]]:
        """``todo`` cut by :func:`make_batches` (longest first)."""
        idx = make_batches([len(p) for p, _ in self.todo], batch_tokens, max_residues)
        return [[self.todo[i] for i in b] for b in idx]

    def finish(self, seconds: float) -> EmbedSummary:
        """Account for the duplicates (each shares its first copy's fate) and the throughput."""
        summary = self.summary
        refused_ids = {pid for pid, _ in summary.refused}
        refused_keys = {next(iter(keys.values())): pid for p, keys in self.todo if (pid := p.id) in refused_ids}
        for key, pid in self.duplicates:
            if key in refused_keys:
                summary.refused.append((pid, f"same content as refused {refused_keys[key]}"))
            else:
                summary.cached += 1
        summary.seconds = seconds
        summary.residues_per_s = summary.residues / seconds if seconds > 0 else 0.0
        return summary


def plan_embedding(backbone: Backbone, proteins: Sequence[Protein], store: EmbeddingStore | None,
                   shard: tuple[int, int] | None = None) -> EmbedPlan:
    """Refuse unusable proteins, drop other shards' and duplicates, and skip what ``store`` (None: an empty
    cache) holds intact."""
    summary = EmbedSummary()
    todo: list[tuple[Protein, dict[Layer, bytes]]] = []
    seen: set[bytes] = set()
    duplicates: list[tuple[bytes, str]] = []
    for p in proteins:
        if shard is not None and shard[1] > 1 and shard_of(p, backbone.level, shard[1]) != shard[0]:
            summary.other_shards += 1
            continue
        reason = _refusal(backbone, p)
        if reason:
            summary.refused.append((p.id, reason))
            continue
        keys = protein_keys(backbone.id, backbone.layers, p, backbone.level)
        first = next(iter(keys.values()))
        if first in seen:
            duplicates.append((first, p.id))
            continue
        seen.add(first)
        todo.append((p, keys))
    flags = cached_flags(store, todo) if store is not None else [False] * len(todo)
    summary.cached += sum(flags)
    return EmbedPlan([t for t, done in zip(todo, flags) if not done], duplicates, summary)


def _embed_into(backbone: Backbone, proteins: Sequence[Protein], store: EmbeddingStore, batch_tokens: int,
                shard: tuple[int, int] | None, progress: bool) -> EmbedSummary:
    store.register(backbone.registry_name, backbone.id, backbone.level,
                   {layer: backbone.dims[layer] for layer in backbone.layers})
    plan = plan_embedding(backbone, proteins, store, shard)
    if plan.todo:  # a read-only cache serves runs with everything cached; refuse before computing anything else
        store.require_writable(f"{len(plan.todo)} protein(s) are not cached yet")
    groups = plan.batches(batch_tokens, backbone.max_residues())
    bar = tqdm(total=sum(len(p) for p, _ in plan.todo), unit="res", unit_scale=True,
               desc=f"embed {backbone.registry_name}", disable=not progress, smoothing=0.1)
    t0 = time.perf_counter()
    with bar, torch.inference_mode(), Committer(store) as committer:
        stream = prepared_batches(backbone, [[p for p, _ in g] for g in groups])
        for entries, (batch, prepared) in zip(groups, stream):
            results = run_batch(backbone, batch, prepared)
            committer.submit(outcome_items(backbone, entries, results, plan.summary))
            bar.update(sum(len(p) for p in batch))
    return plan.finish(time.perf_counter() - t0)
