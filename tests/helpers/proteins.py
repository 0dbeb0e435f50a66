"""Proteins for tests: real StructureDB chains and shipped test structures (``tests/data``), and random ones."""
from __future__ import annotations

import numpy as np

from pa_geo.io.protein import AMINO_ACIDS, Protein
from tests.helpers import TEST_DATA


def structuredb_chains() -> list[Protein]:
    """Three real StructureDB chains (20, 77, 146 residues; tests/data/backbone_chains.npz), N/CA/C/O coordinates."""
    z = np.load(TEST_DATA / "backbone_chains.npz")
    off = np.concatenate([[0], np.cumsum(z["lengths"])])
    out = []
    for i, (pid, seq) in enumerate(zip(z["ids"], z["seqs"])):
        L = int(z["lengths"][i])
        breaks = np.zeros(L, bool)
        breaks[0] = True
        out.append(Protein(str(pid), str(seq), np.full(L, "A", dtype=object),
                           np.arange(L, dtype=np.int64) + int(z["start_resnum"][i]), np.full(L, "", dtype=object),
                           z["coords"][off[i]:off[i + 1]].astype(np.float32), breaks, source=str(pid)))
    return out


def read_test_structure(name: str) -> Protein:
    """``tests/data/<name>`` through ``pa_geo.io.read_structure`` (skips the calling test when the file is absent)."""
    from pa_geo.io import read_structure

    path = TEST_DATA / name
    if not path.is_file():
        import pytest

        pytest.skip(f"{path} not present")
    return read_structure(path)


def random_proteins(n: int, lo: int = 5, hi: int = 60, seed: int = 0, prefix: str = "p") -> list[Protein]:
    """``n`` sequence-only proteins of random length in ``[lo, hi]``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        L = int(rng.integers(lo, hi + 1))
        out.append(Protein.from_sequence(f"{prefix}{i}", "".join(rng.choice(list(AMINO_ACIDS), L))))
    return out


def with_structure(p: Protein, seed: int = 0) -> Protein:
    """A copy of ``p`` with random backbone coordinates ``[L, 4, 3]`` (``has_structure=True``)."""
    rng = np.random.default_rng(seed)
    bb = rng.normal(size=(len(p), 4, 3)).astype(np.float32) * 10
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks,
                   source=p.source, has_structure=True)
