"""Attach cached frozen-backbone embeddings to graphs as ``emb_<backbone>_<layer>`` node fields.

Reading needs no model: an :class:`EmbeddingSource` opens the backbone's store read-only and lock-free and takes
the backbone id and level (which make the keys) from the store's metadata. Safe in DataLoader workers and DDP
ranks: the LMDB environment is opened lazily, once per process.
"""
from __future__ import annotations

import copy
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch_geometric.data import Data

from pa_geo.cache.keys import protein_keys
from pa_geo.cache.store import CorruptEntry, EmbeddingStore, StoreMeta, store_dirname
from pa_geo.errors import CacheError
from pa_geo.graphs.schema import embedding_field
from pa_geo.io.protein import Protein


@dataclass
class EmbeddingSource:
    """Cached embeddings of one backbone: ``layers`` (None = every layer the store holds) under ``cache_root``.

    ``field_name`` overrides the backbone name used in the graph field (default: ``backbone``).
    """

    cache_root: str | Path
    backbone: str
    layers: Sequence[int | str] | None = None
    field_name: str | None = None
    _store: EmbeddingStore | None = field(default=None, init=False, repr=False, compare=False)
    _pid: int = field(default=-1, init=False, repr=False, compare=False)
    _meta: StoreMeta | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:  # an LMDB handle must not cross a fork/pickle: reopen in the new process
        state = dict(self.__dict__)
        state["_store"], state["_pid"], state["_meta"] = None, -1, None
        return state

    def embed_command(self, protein: Protein | None = None) -> str:
        """The ``pa-geo embed`` command that fills this source (for error messages)."""
        layers = " ".join(str(x) for x in self.layers) if self.layers else "all"
        inp = shlex.quote(protein.source) if protein is not None and protein.source else "<your inputs>"
        return (f"pa-geo embed --backbone {self.backbone} --layers {layers} --input {inp} "
                f"--cache {shlex.quote(str(self.cache_root))}")

    @property
    def store(self) -> EmbeddingStore:
        """The read-only store (opened on first use in each process)."""
        if self._store is None or self._pid != os.getpid():
            path = Path(self.cache_root) / store_dirname(self.backbone)
            try:
                self._store = EmbeddingStore(path, readonly=True)
            except CacheError:
                raise CacheError(f"{path}: no {self.backbone} embeddings cached; run: {self.embed_command()}") from None
            self._pid, self._meta = os.getpid(), None
        return self._store

    @property
    def meta(self) -> StoreMeta:
        """The store's metadata (backbone id, level, dims per layer), read once per process."""
        store = self.store
        if self._meta is None:
            meta = store.meta
            if meta is None:
                raise CacheError(f"{store.path}: empty {self.backbone} store; run: {self.embed_command()}")
            self._meta = meta
        return self._meta

    def resolved_layers(self) -> list[int | str]:
        """The requested layers, checked against the store (all stored layers when ``layers`` is None)."""
        meta = self.meta
        if self.layers is None:
            return sorted(meta.dims, key=str)
        if any(x not in meta.dims for x in self.layers):
            self._meta = None  # layers may have been added since: re-read once
            meta = self.meta
        missing = [x for x in self.layers if x not in meta.dims]
        if missing:
            raise CacheError(f"{self.store.path}: layer(s) {missing} of {self.backbone} not cached (cached: "
                             f"{sorted(meta.dims, key=str)}); run: {self.embed_command()}")
        return list(self.layers)

    def read(self, protein: Protein) -> dict[int | str, torch.Tensor]:
        """``{layer: Tensor [L, D]}`` float32 for ``protein``; :class:`CacheError` (one line) when missing/damaged."""
        meta = self.meta
        layers = self.resolved_layers()
        keys = protein_keys(meta.backbone_id, layers, protein, meta.level)  # type: ignore[arg-type]
        out: dict[int | str, torch.Tensor] = {}
        for layer in layers:
            try:
                t = self.store.get(keys[layer], f"protein {protein.id} layer {layer}")
            except CorruptEntry as err:
                raise CacheError(f"{self.store.path}: {err}; rerun to recompute it: "
                                 f"{self.embed_command(protein)}") from None
            if t is None:
                raise CacheError(f"protein {protein.id}: no {self.backbone} layer {layer} embedding in "
                                 f"{self.cache_root}; run: {self.embed_command(protein)}")
            if t.shape[0] != len(protein):
                raise CacheError(f"protein {protein.id}: cached {self.backbone} layer {layer} has {t.shape[0]} rows "
                                 f"for {len(protein)} residues; rerun: {self.embed_command(protein)}")
            out[layer] = t
        return out


def attach_embeddings(graph: Data, protein: Protein, sources: Sequence[EmbeddingSource]) -> Data:
    """Add one float32 node field ``[N, D]`` per (backbone, layer), named by :func:`embedding_field`, in place.

    Residue graphs (N = L residues) get the rows as stored; atom graphs (with ``atom2residue [N]``) get each
    atom's residue row. Raises :class:`CacheError` naming the protein, the backbone and the command to run.
    Returns ``graph``.
    """
    a2r = getattr(graph, "atom2residue", None)
    for src in sources:
        for layer, emb in src.read(protein).items():
            if a2r is not None:
                if a2r.numel() and int(a2r.max()) >= emb.shape[0]:
                    raise CacheError(f"protein {protein.id}: atom2residue points past its {emb.shape[0]} residues")
                emb = emb[a2r]
            elif graph.num_nodes != emb.shape[0]:
                raise CacheError(f"protein {protein.id}: residue graph has {graph.num_nodes} nodes, "
                                 f"{src.backbone} embedding {emb.shape[0]} rows")
            graph[embedding_field(src.field_name or src.backbone, layer)] = emb
    return graph


class AttachEmbeddings:
    """Dataset ``transform``: looks the graph's ``protein_id`` up in ``proteins_by_id`` and attaches ``sources``.

    Works on a shallow copy, so a dataset's cached graphs are never modified.
    """

    def __init__(self, sources: Sequence[EmbeddingSource], proteins_by_id: Mapping[str, Protein]) -> None:
        self.sources = list(sources)
        self.proteins_by_id = proteins_by_id

    def __call__(self, data: Data) -> Data:
        pid = getattr(data, "protein_id", None)
        if pid is None or pid not in self.proteins_by_id:
            raise CacheError(f"graph with protein_id {pid!r}: protein unknown to AttachEmbeddings")
        return attach_embeddings(copy.copy(data), self.proteins_by_id[pid], self.sources)

    def __repr__(self) -> str:
        names = ", ".join(f"{s.backbone}{list(s.layers) if s.layers else ''}" for s in self.sources)
        return f"{type(self).__name__}({names})"
