"""Embedding caches filled with random vectors of the right widths under the right keys (no model runs): what the
data path reads, for tests of configs whose backbones (ESM-1b, ESM-IF1) have no weights on the machine."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from pa_geo.cache.keys import protein_keys
from pa_geo.cache.store import EmbeddingStore
from pa_geo.io.protein import Protein

STRUCTURE_BACKBONES = frozenset({"esm_if1", "proteinmpnn", "proteinmpnn_ca"})  # the rest read sequences


def fill_random_cache(cache_root: str | Path, backbone: str, dims: dict[int, int], proteins: Iterable[Protein],
                      seed: int = 0) -> Path:
    """Write ``[L, dims[layer]]`` random float vectors for every protein and layer of ``backbone`` under
    ``cache_root`` (the store layout and keys of :mod:`pa_geo.cache`; backbone id ``<backbone>-random``)."""
    level = "structure" if backbone in STRUCTURE_BACKBONES else "sequence"
    store = EmbeddingStore.for_backbone(cache_root, backbone, readonly=False)  # fp16, as real caches
    try:
        backbone_id = f"{backbone}-random"
        store.register(backbone, backbone_id, level, dict(dims))
        g = torch.Generator().manual_seed(seed)
        items = []
        seen: set[str] = set()
        for p in proteins:
            for layer, key in protein_keys(backbone_id, list(dims), p, level).items():  # type: ignore[arg-type]
                if key.hex() not in seen:
                    seen.add(key.hex())
                    items.append((key, torch.randn(len(p), dims[layer], generator=g)))
        store.put_many(items)
    finally:
        store.close()
    return Path(cache_root)
