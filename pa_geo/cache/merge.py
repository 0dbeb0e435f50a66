"""Merging caches: shard runs written to separate directories (other machines, other disks) into one cache."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from pa_geo.cache.store import CorruptEntry, EmbeddingStore, check_entry
from pa_geo.errors import CacheError


def store_dirs(cache_root: str | Path) -> list[Path]:
    """The backbone store directories (those holding a ``data.mdb``) directly under ``cache_root``, sorted."""
    root = Path(cache_root)
    if root.exists() and not root.is_dir():
        raise CacheError(f"{root}: is a file, not a cache directory")
    if not root.is_dir():
        raise CacheError(f"{root}: cache directory does not exist")
    return sorted(d for d in root.iterdir() if (d / "data.mdb").is_file())


def merge_caches(sources: Sequence[str | Path], dest: str | Path, chunk: int = 256) -> dict[str, int]:
    """Copy every intact entry of every backbone store under the ``sources`` cache roots into ``dest``.

    Each store is matched by directory name and must hold the same backbone id as ``dest``'s (else
    :class:`CacheError`); layer dims are merged. Corrupt source entries are reported and skipped. Writes one
    transaction per ``chunk`` entries. Returns ``{store name: entries copied}``.
    """
    dest = Path(dest)
    copied: dict[str, int] = {}
    for src_root in sources:
        if Path(src_root).resolve() == dest.resolve():
            raise CacheError(f"{src_root}: merge source is the destination")
        dirs = store_dirs(src_root)
        if not dirs:
            raise CacheError(f"{src_root}: no embedding store to merge (no <backbone>/data.mdb)")
        for d in dirs:
            with EmbeddingStore(d, readonly=True) as src:
                meta = src.meta
                if meta is None:
                    continue
                with EmbeddingStore(dest / d.name, readonly=False, dtype=meta.dtype) as out:  # type: ignore[arg-type]
                    out.register(meta.backbone, meta.backbone_id, meta.level, meta.dims)
                    buf: list[tuple[bytes, bytes]] = []
                    n = 0
                    for key, raw in src.iter_raw(chunk):
                        try:
                            check_entry(raw, f"{d} key {key.hex()[:16]}")
                        except CorruptEntry as err:
                            warnings.warn(f"skipping corrupt entry while merging: {err}", stacklevel=2)
                            continue
                        buf.append((key, raw))
                        if len(buf) >= chunk:
                            out.put_raw_many(buf)
                            n += len(buf)
                            buf = []
                    if buf:
                        out.put_raw_many(buf)
                        n += len(buf)
            copied[d.name] = copied.get(d.name, 0) + n
    return copied
