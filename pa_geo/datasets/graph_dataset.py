"""Build graphs once, keep them on disk: a PyG ``InMemoryDataset`` over Proteins or structure files.

``GraphDataset(root, sources, builder, builder_kwargs)`` calls ``builder(protein, **builder_kwargs)`` for every
source, collates the graphs and writes them atomically (temp file + rename) to
``root/processed/graphs_<key>.pt`` with a readable ``graphs_<key>.json`` manifest beside it. ``key`` hashes the
builder's qualified name, its kwargs, a fingerprint of every source (Protein content / file path, size and mtime)
and ``version``; changing any of them (e.g. the radius) builds a new file, and the same settings reuse the
existing one without calling the builder. Embeddings and labels go on top through ``transform``.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch_geometric.data import Data, InMemoryDataset

from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein

FORMAT_VERSION = 1
Source = Protein | str | os.PathLike


def _protein_fingerprint(p: Protein) -> str:
    h = hashlib.sha256()
    h.update(p.id.encode())
    h.update(p.sequence.encode())
    h.update("\x00".join(map(str, p.chain_ids.tolist())).encode())
    h.update(np.ascontiguousarray(p.residue_numbers, np.int64).tobytes())
    h.update(np.ascontiguousarray(p.backbone, np.float32).tobytes())
    h.update(np.ascontiguousarray(p.atoms.coords, np.float32).tobytes())
    h.update(b"1" if p.has_structure else b"0")
    return f"protein:{p.id}:{h.hexdigest()[:16]}"


def source_fingerprint(source: Source) -> str:
    """Identity of a source for the cache key: Protein content, or a file's resolved path, size and mtime."""
    if isinstance(source, Protein):
        return _protein_fingerprint(source)
    path = Path(source)
    try:
        st = path.stat()
    except OSError:
        raise DatasetError(f"{path}: source file not found") from None
    return f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def settings_key(builder: Callable[..., Data], builder_kwargs: dict[str, Any], sources: Sequence[Source],
                 version: str = "") -> tuple[str, dict[str, Any]]:
    """(16-hex key, the settings it hashes) for a builder, its kwargs and the sources."""
    settings = {"format": FORMAT_VERSION, "builder": _jsonable(builder), "kwargs": _jsonable(builder_kwargs),
                "version": version, "sources": [source_fingerprint(s) for s in sources]}
    blob = json.dumps(settings, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16], settings


def _atomic_write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class GraphDataset(InMemoryDataset):
    """Graphs built once from ``sources`` by ``builder`` and cached under ``root/processed/``.

    Args:
        root: dataset directory (``processed/`` is created inside).
        sources: Proteins (with distinct ids) and/or structure file paths.
        builder: ``builder(protein, **builder_kwargs) -> Data``, e.g. :func:`pa_geo.graphs.residue_graph`.
        builder_kwargs: keyword arguments of the builder (part of the cache key).
        loader: ``loader(path) -> Protein`` for file sources (default :func:`pa_geo.io.read_structure`).
        transform: applied on every access (attach embeddings / labels here).
        version: extra string mixed into the cache key (bump it when the builder's code changes).
        force_reload: rebuild even when the processed file exists.

    ``ds[i]`` is the i-th graph (source order); ``ds.num_built`` counts builder calls made by this instance.
    """

    def __init__(self, root: str | os.PathLike, sources: Sequence[Source], builder: Callable[..., Data],
                 builder_kwargs: dict[str, Any] | None = None, loader: Callable[[Path], Protein] | None = None,
                 transform: Callable[[Data], Data] | None = None, version: str = "",
                 force_reload: bool = False) -> None:
        self.sources = list(sources)
        if not self.sources:
            raise DatasetError(f"{root}: GraphDataset needs at least one source")
        self.builder = builder
        self.builder_kwargs = dict(builder_kwargs or {})
        self.loader = loader
        self.num_built = 0
        self.key, self.settings = settings_key(builder, self.builder_kwargs, self.sources, version)
        super().__init__(str(root), transform=transform, log=False, force_reload=force_reload)
        try:
            self.load(self.processed_paths[0])
        except Exception as err:  # noqa: BLE001 - a truncated/corrupt cache file: say which and how to fix it
            raise DatasetError(f"{self.processed_paths[0]}: cannot load processed graphs ({type(err).__name__}: "
                               f"{err}); delete it or pass force_reload=True") from None

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return [f"graphs_{self.key}.pt"]

    def download(self) -> None:  # sources are given, nothing to download
        pass

    def _process(self) -> None:
        # PyG's version also writes pre_transform.pt / pre_filter.pt non-atomically; we have neither.
        if not self.force_reload and osp.exists(self.processed_paths[0]):
            return
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()

    def _load_source(self, source: Source) -> Protein:
        if isinstance(source, Protein):
            return source
        loader = self.loader
        if loader is None:
            from pa_geo.io import read_structure as loader  # noqa: PLC0415 - lazy: io is optional here
        return loader(Path(source))

    def process(self) -> None:
        graphs = []
        for source in self.sources:
            protein = self._load_source(source)
            graph = self.builder(protein, **self.builder_kwargs)
            self.num_built += 1
            if not isinstance(graph, Data):
                raise DatasetError(f"{getattr(protein, 'id', source)}: builder returned "
                                   f"{type(graph).__name__}, expected a torch_geometric Data")
            graphs.append(graph)
        path = self.processed_paths[0]
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            self.save(graphs, tmp)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
        manifest = {**self.settings, "num_graphs": len(graphs), "file": osp.basename(path)}
        _atomic_write_text(path[:-3] + ".json", json.dumps(manifest, indent=1) + "\n")
