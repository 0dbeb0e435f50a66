"""The data of ``scripts/train_pretrained.py``: StructureDB chains, the 50 independent PDB chains kept out, and a
split grouped by PDB entry and sequence identity.

Rules (the model card states them):

* every chain of the StructureDB sample is read with :func:`pa_geo.formats.structuredb.load_structuredb`; the
  shipped ``data/structuredb_subset.npz`` is checked to be a subset of it (same ids, sequences, DSSP, coordinates
  and SASA);
* the sample's chains and the 50 ``data/pdb_dssp`` chains are clustered together (MMseqs2 ``easy-cluster``, 30%
  identity, 80% coverage of both sequences, when ``mmseqs`` is on PATH; else single-linkage groups of shared
  5-mers, ~80% identity: :func:`pa_geo.tables.similarity_split.cluster_sequences`);
* a chain is excluded when its PDB entry is the entry of one of the 50 files (``1or4A.pdb.gz`` -> 1OR4) or when it
  is in the cluster of one of the 50 chains;
* the rest is grouped by PDB entry AND cluster (two chains sharing either are in one group, transitively) and the
  groups are dealt to train / valid / test (:func:`pa_geo.datasets.splits.split_by_group`, seeded).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pa_geo.datasets.splits import SPLIT_NAMES, pdb_id_groups, split_by_group
from pa_geo.formats.structuredb import StructureDBRecord, load_structuredb
from pa_geo.io import read_structure
from pa_geo.tables.similarity_split import SplitParams, cluster_sequences, write_split_file

INDEPENDENT_SUFFIX = ".pdb.gz"


@dataclass
class SplitResult:
    """``split`` ``{id: train | valid | test}``, ``group`` ``{id: group label}``, ``excluded`` ``{id: reason}``,
    the clustering ``method`` and ``counts`` (chains / residues per split)."""

    split: dict[str, str]
    group: dict[str, str]
    excluded: dict[str, str]
    method: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def subset_check(sample: list[StructureDBRecord], subset_path: Path) -> dict[str, object]:
    """Whether every chain of ``subset_path`` is a chain of ``sample`` with identical arrays."""
    subset = load_structuredb(subset_path)
    by_id = {r.protein.id: r for r in sample}
    same = [r.protein.id in by_id and r.protein.sequence == by_id[r.protein.id].protein.sequence
            and r.dssp8 == by_id[r.protein.id].dssp8 and np.array_equal(r.rsa, by_id[r.protein.id].rsa)
            and np.array_equal(r.protein.backbone, by_id[r.protein.id].protein.backbone, equal_nan=True)
            for r in subset]
    return {"file": subset_path.name, "chains": len(subset), "in_sample": int(sum(same)),
            "is_subset": bool(all(same))}


def independent_chains(folder: Path) -> dict[str, str]:
    """``{id: sequence}`` of the ``*.pdb.gz`` chains in ``folder`` (``1or4A``)."""
    return {p.name[: -len(INDEPENDENT_SUFFIX)]: read_structure(p).sequence
            for p in sorted(folder.glob(f"*{INDEPENDENT_SUFFIX}"))}


def entry_of(chain_id: str) -> str:
    """PDB entry of a StructureDB id (``3Q4O_A``) or an independent file id (``3q4oA``): upper-case 4 letters."""
    return chain_id.split("_", 1)[0][:4].upper()


def _linked_groups(*labels: np.ndarray) -> np.ndarray:
    """``[N]`` component labels of items linked when they share a label of any of ``labels`` (each ``[N]``)."""
    n = len(labels[0])
    rows, cols = [], []
    for lab in labels:
        _, inverse = np.unique(np.asarray(lab).astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        same = inverse[order][1:] == inverse[order][:-1]
        rows.append(order[:-1][same])
        cols.append(order[1:][same])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def make_split(sample: list[StructureDBRecord], independent: dict[str, str], params: SplitParams) -> SplitResult:
    """Exclude and split the ``sample`` chains (module docstring); ``independent`` ``{id: sequence}``."""
    ids = [r.protein.id for r in sample]
    sequences = [r.protein.sequence for r in sample] + list(independent.values())
    clusters, method = cluster_sequences(sequences, params)
    held_entries = {entry_of(i) for i in independent}
    held_clusters = {int(c): i for i, c in zip(independent, clusters[len(ids):])}
    excluded: dict[str, str] = {}
    for i, rid in enumerate(ids):
        if entry_of(rid) in held_entries:
            excluded[rid] = f"PDB entry {entry_of(rid)} of an independent chain"
        elif int(clusters[i]) in held_clusters:
            excluded[rid] = f"sequence cluster of independent chain {held_clusters[int(clusters[i])]}"
    keep = [i for i, rid in enumerate(ids) if rid not in excluded]
    kept_ids = [ids[i] for i in keep]
    groups = _linked_groups(pdb_id_groups(kept_ids), clusters[keep])
    parts = split_by_group(kept_ids, groups, params.fractions, params.seed)
    split = {kept_ids[j]: name for name, index in parts.items() for j in index}
    counts = {name: {"chains": int(len(index)), "residues": int(sum(len(sample[keep[j]].protein) for j in index)),
                     "groups": int(len(set(groups[index].tolist())))} for name, index in parts.items()}
    return SplitResult(split, {kept_ids[j]: f"g{int(groups[j])}" for j in range(len(kept_ids))}, excluded,
                       method, counts)


def write_split(result: SplitResult, path: Path, params: SplitParams, source: str) -> None:
    """The split file (:func:`pa_geo.tables.similarity_split.write_split_file`: ``# key: value`` lines, then
    ``id,split,group``) and ``excluded.csv`` (``id,reason``) next to it."""
    ids = sorted(result.split)
    header = {"table": source, "method": result.method, "identity": str(params.identity),
              "coverage": str(params.coverage), "fractions": ",".join(f"{f:g}" for f in params.fractions),
              "seed": str(params.seed), "rows": str(len(ids)), "excluded": str(len(result.excluded)),
              "grouping": "PDB entry and sequence cluster (linked transitively)"}
    write_split_file(path, ids, [result.split[i] for i in ids], [result.group[i] for i in ids], header)
    lines = ["id,reason"] + [f"{i},{reason}" for i, reason in sorted(result.excluded.items())]
    path.with_name("excluded.csv").write_text("\n".join(lines) + "\n")


def split_summary(result: SplitResult) -> dict[str, object]:
    """The split facts the metrics JSON and the model card give."""
    by_reason = {"pdb_entry": sum(r.startswith("PDB entry") for r in result.excluded.values()),
                 "sequence_cluster": sum(r.startswith("sequence cluster") for r in result.excluded.values())}
    return {"method": result.method, "excluded": len(result.excluded), "excluded_by": by_reason,
            "sizes": {name: result.counts[name] for name in SPLIT_NAMES}}
