"""The demo's data, shipped in the repository's ``data/`` folder (``data/README.md``), and its fixed splits.

StructureDB chains are grouped by PDB entry; solubility sequences by shared k-mers
(:func:`~pa_geo.datasets.splits.sequence_similarity_groups`), so near-identical sequences land in one split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pa_geo.datasets.splits import pdb_id_groups, sequence_similarity_groups, split_by_group

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
STRUCTUREDB_PATH = DATA_DIR / "structuredb_subset.npz"
SOLUBILITY_PATH = DATA_DIR / "solubility.csv"


def split_structuredb(ids: Sequence[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`split_by_group` of StructureDB ids grouped by PDB entry (:func:`pdb_id_groups`)."""
    return split_by_group(ids, pdb_id_groups(ids), fractions, seed)


def split_solubility(names: Sequence[str], sequences: Sequence[str],
                     fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`split_by_group` of solubility records grouped by :func:`sequence_similarity_groups`."""
    return split_by_group(names, sequence_similarity_groups(sequences), fractions, seed)
