"""Attach cached frozen-backbone embeddings to graphs as ``emb_<backbone>_<layer>`` node fields.

Reading needs no model: an :class:`EmbeddingSource` opens the backbone's store read-only and lock-free and takes
the backbone id and level (which make the keys) from the store's metadata. Safe in DataLoader workers and DDP
ranks: the LMDB environment is opened lazily, once per process.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from pa_geo.backbones.base import get_backbone
from pa_geo.cache.embed_cli import FASTA_SUFFIXES, STRUCTURE_SUFFIXES, read_inputs
from pa_geo.cache.keys import content_digest, entry_key
from pa_geo.cache.store import CorruptEntry, EmbeddingStore, StoreMeta, check_entry, store_dirname
from pa_geo.errors import CacheError, ConfigError, PaGeoError
from pa_geo.graphs.schema import embedding_field
from pa_geo.io.protein import Protein

ENTRY_HEADER_BYTES = 20  # pa_geo.cache.store: magic, version, dtype, reserved, rows, cols, crc32


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
        """The command that fills this source, for error messages: ``pa-geo embed --backbone .. --input FILE`` when
        ``protein`` came from a structure / FASTA file that ``pa-geo embed`` reads back into the same protein (same
        content digest), else :data:`EMBED_FOR_CONFIG` + the explicit form (``pa-geo fit | validate | test |
        predict`` put their own arguments in place of ``<your config>``)."""
        layers = " ".join(str(x) for x in self.layers) if self.layers else "all"
        tail = f"--backbone {self.backbone} --layers {layers} --cache {shlex.quote(str(self.cache_root))}"
        if protein is not None and _embed_reads_back(protein, self._meta.level if self._meta else None):
            return f"pa-geo embed {tail} --input {shlex.quote(str(protein.source))}"
        return f"{EMBED_FOR_CONFIG} (the training config), or pa-geo embed {tail} --input <structure or FASTA files>"

    @property
    def store(self) -> EmbeddingStore:
        """The read-only store (opened on first use in each process)."""
        if self._store is None or self._pid != os.getpid():
            path = Path(self.cache_root) / store_dirname(self.backbone)
            if not (path / "data.mdb").is_file():  # a damaged store keeps the store's own message (repair advice)
                raise CacheError(f"{path}: no {self.backbone} embeddings cached; run: {self.embed_command()}")
            self._store = EmbeddingStore(path, readonly=True)
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
            where = f"{self.store.path}: layer(s) {missing} of {self.backbone} not cached (cached: " \
                    f"{sorted(meta.dims, key=str)})"
            absent = _not_a_layer(self.backbone, missing)
            if absent:
                raise CacheError(f"{where}, and {absent}: use those layers in data.embeddings and the encoder's "
                                 f"levels")
            raise CacheError(f"{where}; run: {self.embed_command()}")
        return list(self.layers)

    def read(self, protein: Protein) -> dict[int | str, torch.Tensor]:
        """``{layer: Tensor [L, D]}`` float32 for ``protein``; :class:`CacheError` (one line) when missing/damaged."""
        digest = content_digest(protein, self.meta.level)  # type: ignore[arg-type]
        return self.read_digest(digest, protein.id, len(protein), protein)

    def read_digest(self, digest: bytes, protein_id: str, length: int, protein: Protein | None = None,
                    as_stored: bool = False) -> dict[int | str, torch.Tensor]:
        """``{layer: Tensor [length, D]}`` of the protein whose content digest (for this backbone's level,
        :func:`pa_geo.cache.keys.content_digest`) is ``digest``: float32, or with ``as_stored`` the cache's own dtype
        (float16 by default: half the bytes to move); errors name ``protein_id`` and the embed command."""
        meta = self.meta
        out: dict[int | str, torch.Tensor] = {}
        for layer in self.resolved_layers():
            key = entry_key(meta.backbone_id, layer, digest)
            what = f"protein {protein_id} layer {layer}"
            try:
                t = self.store.get(key, what) if not as_stored else _stored(self.store.get_raw_many([key])[0], what)
            except CorruptEntry as err:
                raise CacheError(f"{self.store.path}: {err}; to recompute it, run: "
                                 f"{self.embed_command(protein)}") from None
            if t is None:
                raise CacheError(f"protein {protein_id}: no {self.backbone} layer {layer} embedding in "
                                 f"{self.cache_root}; run: {self.embed_command(protein)}")
            if t.shape[0] != length:  # embed skips an entry it has, so the store has to go first
                raise CacheError(f"protein {protein_id}: cached {self.backbone} layer {layer} has {t.shape[0]} rows "
                                 f"for {length} residues (a cache written from other residues); delete "
                                 f"{self.store.path}, then run: {self.embed_command(protein)}")
            out[layer] = t
        return out


EMBED_FOR_CONFIG = "pa-geo embed --config <your config>"  # pa_geo.train.cli puts the run's own arguments here


def _embed_reads_back(protein: Protein, level: str | None = None) -> bool:
    """Whether ``pa-geo embed --input <protein.source>`` embeds this very protein: the source is a structure / FASTA
    file that embed reads, and one protein read from it has the same content digest at the backbone's ``level``
    (both levels when it is not known)."""
    path = Path(str(protein.source or ""))
    if not path.name.lower().endswith(FASTA_SUFFIXES + STRUCTURE_SUFFIXES) or not path.is_file():
        return False
    want = {lv: content_digest(protein, lv) for lv in ([level] if level else ["sequence", "structure"])}
    read, _ = read_inputs([path])
    return any(all(content_digest(p, lv) == d for lv, d in want.items()) for p in read)  # type: ignore[arg-type]


def _not_a_layer(backbone: str, layers: Sequence[int | str]) -> str | None:
    """Why ``layers`` are not layers of ``backbone`` at all (its valid range), or None when they are or the backbone
    cannot be built here (weights absent: then only the cache can say)."""
    try:
        get_backbone(backbone, layers=list(layers))
    except ConfigError as err:
        return " ".join(str(err).split())
    except (PaGeoError, OSError, TypeError):
        return None
    return None


def _stored(raw: bytes | None, what: str) -> torch.Tensor | None:
    """A checked cache entry as a tensor of its stored dtype (no float32 copy)."""
    if raw is None:
        return None
    np_dtype, rows, cols = check_entry(raw, what)
    return torch.frombuffer(bytearray(memoryview(raw)[ENTRY_HEADER_BYTES:]), dtype=_TORCH[np_dtype.str]).view(rows, cols)


_TORCH = {"<f2": torch.float16, "<f4": torch.float32}
DIGEST_FIELDS = {"sequence": "digest_sequence", "structure": "digest_structure"}


def stamp_digests(graph: Data, protein: Protein) -> Data:
    """Record on ``graph`` what the embedding transform needs to find ``protein``'s cached rows without the protein:
    ``digest_sequence`` / ``digest_structure`` (hex of :func:`pa_geo.cache.keys.content_digest`) and
    ``num_residues`` (L). Returns ``graph``."""
    for level, name in DIGEST_FIELDS.items():
        graph[name] = content_digest(protein, level).hex()  # type: ignore[arg-type]
    graph.num_residues = len(protein)
    return graph


def _put_rows(graph: Data, rows: dict[int | str, torch.Tensor], src: EmbeddingSource, protein_id: str,
              prefix: str = "") -> None:
    """Set ``<prefix>emb_<backbone>_<layer>`` [N, D]: rows as stored (residue graphs) or gathered per atom."""
    a2r = graph.get(f"{prefix}atom2residue")
    nodes = graph[f"{prefix}num_nodes"] if prefix else graph.num_nodes
    for layer, emb in rows.items():
        if a2r is not None:
            if a2r.numel() and int(a2r.max()) >= emb.shape[0]:
                raise CacheError(f"protein {protein_id}: atom2residue points past its {emb.shape[0]} residues")
            emb = emb[a2r]
        elif nodes != emb.shape[0]:
            raise CacheError(f"protein {protein_id}: residue graph has {nodes} nodes, "
                             f"{src.backbone} embedding {emb.shape[0]} rows")
        graph[f"{prefix}{embedding_field(src.field_name or src.backbone, layer)}"] = emb


def attach_embeddings(graph: Data, protein: Protein, sources: Sequence[EmbeddingSource]) -> Data:
    """Add one float32 node field ``[N, D]`` per (backbone, layer), named by :func:`embedding_field`, in place.

    Residue graphs (N = L residues) get the rows as stored; atom graphs (with ``atom2residue [N]``) get each
    atom's residue row. Raises :class:`CacheError` naming the protein, the backbone and the command to run.
    Returns ``graph``.
    """
    for src in sources:
        _put_rows(graph, src.read(protein), src, protein.id)
    return graph


class AttachEmbeddings(BaseTransform):
    """The dataset transform that attaches cached embeddings to every protein graph of an example, in the cache's
    dtype (float16 unless the cache was written in float32: half the bytes a DataLoader worker sends; the model
    takes float32 again, ``PaGeoModule.forward``).

    Works on graphs stamped by :func:`stamp_digests` (every graph the data path builds): a plain graph, or each
    part of a multi-graph example (fields ``<part>__digest_<level>``, ``<part>__num_nodes``; see
    :mod:`pa_geo.tasks.kinds.data`). Parts without digests (a ligand) get nothing; the digests are dropped once
    used (less to send from a DataLoader worker). Reads lazily, once-per-process LMDB handles (safe in DataLoader
    workers and DDP ranks). Modifies and returns the example it is given.
    """

    def __init__(self, sources: Sequence[EmbeddingSource]) -> None:
        self.sources = list(sources)

    def forward(self, data: Data) -> Data:
        for key in [k for k in data.keys() if k.endswith("digest_sequence")]:
            prefix = key[: -len("digest_sequence")]
            pid = str(data.get(f"{prefix}protein_id", data.get("record_id", "?")))
            length = int(data[f"{prefix}num_residues"])
            for src in self.sources:
                digest = bytes.fromhex(data[f"{prefix}{DIGEST_FIELDS[src.meta.level]}"])
                _put_rows(data, src.read_digest(digest, pid, length, as_stored=True), src, pid, prefix)
            for name in DIGEST_FIELDS.values():
                del data[f"{prefix}{name}"]
        return data

    def __repr__(self) -> str:
        names = ", ".join(f"{s.backbone}{list(s.layers) if s.layers else ''}" for s in self.sources)
        return f"{type(self).__name__}({names})"
