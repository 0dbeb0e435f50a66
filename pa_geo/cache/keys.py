"""Content-addressed cache keys: the same protein content under the same weights and layer gives the same key.

A key hashes what the backbone actually sees, never a file name or record id: renaming a file or re-using an id
for another sequence can therefore never serve a stale embedding.

- sequence backbones: backbone id + layer + sequence
- structure backbones: the above + backbone coordinates rounded to ``COORD_DECIMALS`` (NaN kept as NaN) + the
  chain context (chain id of every residue and the chain breaks), since a structure encoder sees neighbours,
  chain boundaries and gaps.
"""
from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

from pa_geo.io.protein import Protein

KEY_FORMAT = 1
# 0.001 A: far below coordinate error of any experimental structure, far above float32 round-off of a re-read file.
COORD_DECIMALS = 3
Level = Literal["sequence", "structure"]


def _structure_bytes(protein: Protein) -> bytes:
    coords = np.round(np.asarray(protein.backbone, dtype=np.float64), COORD_DECIMALS)
    coords = np.where(np.isfinite(coords), coords, np.nan) + 0.0  # +0.0 folds -0.0 into 0.0
    chains = "\x1f".join(str(c) for c in protein.chain_ids).encode()
    breaks = np.asarray(protein.chain_breaks, dtype=np.uint8).tobytes()
    return coords.astype("<f8").tobytes() + b"\x1e" + chains + b"\x1e" + breaks


def content_digest(protein: Protein, level: Level) -> bytes:
    """sha256 (32 bytes) of the protein content a ``level`` backbone reads; independent of weights and layer."""
    h = hashlib.sha256(f"pa_geo-content-v{KEY_FORMAT}\x1e{level}\x1e".encode())
    h.update(protein.sequence.upper().encode())
    if level == "structure":
        h.update(b"\x1e")
        h.update(_structure_bytes(protein))
    return h.digest()


def entry_key(backbone_id: str, layer: int | str, content: bytes) -> bytes:
    """The 32-byte LMDB key of one (weights, layer, protein content) embedding.

    ``content`` comes from :func:`content_digest`.
    """
    h = hashlib.sha256(f"pa_geo-entry-v{KEY_FORMAT}\x1e{backbone_id}\x1e{layer}\x1e".encode())
    h.update(content)
    return h.digest()


def protein_keys(backbone_id: str, layers: list[int | str], protein: Protein, level: Level) -> dict[int | str, bytes]:
    """``{layer: key}`` for every requested layer of one protein."""
    content = content_digest(protein, level)
    return {layer: entry_key(backbone_id, layer, content) for layer in layers}


def shard_of(protein: Protein, level: Level, num_shards: int) -> int:
    """Deterministic shard index in ``0..num_shards-1`` of a protein (its content hash mod N, same in every process)."""
    return int.from_bytes(content_digest(protein, level)[:8], "big") % num_shards
