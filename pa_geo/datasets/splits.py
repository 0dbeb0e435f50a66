"""Deterministic train/valid/test splits in which a group (PDB entry, sequence cluster) never straddles splits.

Groups: PDB entries (:func:`pdb_id_groups`, the id part before ``_``) or a cheap sequence-similarity rule
(:func:`sequence_similarity_groups`: single linkage over shared k-mers, so near-identical sequences and fragments of
one another always land in the same split).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pa_geo.errors import ConfigError

SPLIT_NAMES: tuple[str, str, str] = ("train", "valid", "test")


def split_by_group(ids: Sequence[str], groups: Sequence, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Split items into train/valid/test so that every group falls into exactly one split.

    Groups are ordered by a permutation drawn from ``numpy.random.default_rng(seed)`` over the sorted unique group
    labels (so the result depends only on the id/group pairs' content, seed and fractions), then laid end to end:
    a group goes to the split whose share of ``[0, N)`` contains the group's midpoint. Split sizes deviate from
    ``fractions * N`` by at most about one group.

    Args:
        ids: ``[N]`` unique item ids (checked for duplicates and length).
        groups: ``[N]`` group label per item (any hashable, compared as str).
        fractions: three non-negative fractions summing to 1.
    Returns:
        ``{"train", "valid", "test"}`` -> sorted ``[n_split]`` int64 index arrays; disjoint, covering ``0..N-1``.
    """
    ids = np.asarray(ids).astype(str)
    labels = np.asarray(groups).astype(str)
    if len(ids) != len(labels):
        raise ConfigError(f"split_by_group: {len(ids)} ids but {len(labels)} group labels")
    if len(np.unique(ids)) != len(ids):
        raise ConfigError("split_by_group: ids are not unique")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or (frac < 0).any() or not np.isclose(frac.sum(), 1.0):
        raise ConfigError(f"split_by_group: fractions must be three non-negative numbers summing to 1, got {fractions}")
    n = len(ids)
    if n == 0:
        return {name: np.zeros(0, np.int64) for name in SPLIT_NAMES}
    uniq, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(uniq))
    order = np.random.default_rng(seed).permutation(len(uniq))
    ends = np.cumsum(sizes[order])
    mids = ends - sizes[order] / 2.0
    bounds = np.cumsum(frac)[:-1] * n
    split_of_group = np.empty(len(uniq), np.int64)
    split_of_group[order] = np.searchsorted(bounds, mids, side="right")
    item_split = split_of_group[inverse]
    return {name: np.flatnonzero(item_split == k).astype(np.int64) for k, name in enumerate(SPLIT_NAMES)}


def pdb_id_groups(ids: Sequence[str]) -> np.ndarray:
    """``[N]`` str group labels for ``PDBID_CHAIN`` ids: the upper-cased part before the first ``_``."""
    return np.array([str(i).split("_", 1)[0].upper() for i in ids], dtype=object)


def sequence_similarity_groups(sequences: Sequence[str], k: int = 5, min_shared: float = 0.3,
                               max_kmer_fraction: float = 0.01, min_kmer_cap: int = 32) -> np.ndarray:
    """``[N]`` int64 cluster labels: single-linkage components of a "shares many k-mers" graph.

    Rule: each sequence is reduced to its set of distinct ``k``-mers (k = 5). k-mers present in more than
    ``max(min_kmer_cap, max_kmer_fraction * N)`` sequences are ignored: those are expression tags and linkers
    (His-tags, TEV sites), which would otherwise join unrelated proteins. Two sequences are linked when the number
    of k-mers they share is at least ``min_shared`` times the k-mer count of the LONGER one (0.3 of 5-mers is
    roughly >= 80% identity over the longer sequence's length: a k-mer survives identity p with probability p^5).
    Clusters are the connected components (single linkage), labelled in order of their first member. Exact
    pair counts come from one sparse product (well under 1 s for 3,230 sequences).
    """
    n = len(sequences)
    if not 1 <= k <= 8:
        raise ConfigError(f"sequence_similarity_groups: k must be in 1..8, got {k}")
    if n == 0:
        return np.zeros(0, np.int64)
    seq_of_kmer, kmer_id = _kmer_pairs([str(q).upper() for q in sequences], k)
    n_vocab = int(kmer_id.max()) + 1 if len(kmer_id) else 1
    m = sp.csr_matrix((np.ones(len(kmer_id), np.float32), (seq_of_kmer, kmer_id)), shape=(n, n_vocab))
    doc_freq = np.asarray(m.sum(axis=0)).ravel()
    m = m[:, doc_freq <= max(min_kmer_cap, max_kmer_fraction * n)]
    n_kmers = np.asarray(m.sum(axis=1)).ravel()
    shared = sp.triu(m @ m.T, k=1).tocoo()
    longer = np.maximum(n_kmers[shared.row], n_kmers[shared.col])
    linked = shared.data >= min_shared * np.maximum(longer, 1.0)
    graph = sp.coo_matrix((np.ones(int(linked.sum())), (shared.row[linked], shared.col[linked])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Relabel components by first member so labels do not depend on scipy's internal numbering.
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


def _kmer_pairs(sequences: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (sequence index, k-mer id) pairs, vectorised: each k-mer is a base-27 integer of its letters."""
    lengths = np.fromiter((len(q) for q in sequences), np.int64, len(sequences))
    letters = np.frombuffer("".join(sequences).encode("ascii", "replace"), np.uint8).astype(np.int64)
    codes = np.clip(letters - ord("A") + 1, 0, 26)  # A..Z -> 1..26, anything else -> 0
    owner = np.repeat(np.arange(len(sequences)), lengths)
    n_windows = len(codes) - k + 1
    if n_windows <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = np.zeros(n_windows, np.int64)
    for j in range(k):
        key = key * 27 + codes[j:j + n_windows]
    inside = owner[:n_windows] == owner[k - 1:]  # window does not cross into the next sequence
    span = 27 ** k
    # Distinct (sequence, k-mer) keys by sort + diff: np.unique is ~100x slower on this numpy (2.4) build.
    pair_key = np.sort(owner[:n_windows][inside] * span + key[inside])  # int64 holds this for k <= 8
    pair_key = pair_key[np.r_[True, pair_key[1:] != pair_key[:-1]]]
    kmer = pair_key % span
    order = np.argsort(kmer, kind="stable")
    kmer_id = np.empty(len(kmer), np.int64)
    kmer_id[order] = np.cumsum(np.r_[False, kmer[order][1:] != kmer[order][:-1]])
    return pair_key // span, kmer_id
