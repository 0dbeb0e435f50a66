"""Real proteins for graph tests: StructureDB chains (tests/data/structuredb_subset.npz) and ATOM3D frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pa_geo.io.protein import AtomTable, Protein

DATA = Path(__file__).resolve().parents[1] / "data"


def structuredb_proteins() -> list[Protein]:
    """The chains of ``structuredb_subset.npz`` as Proteins (N, CA, C, O backbone atoms in the atom table)."""
    d = np.load(DATA / "structuredb_subset.npz")
    offsets = np.concatenate([[0], np.cumsum(d["lengths"])])
    out = []
    for i, pid in enumerate(d["ids"]):
        bb = d["coords"][offsets[i]:offsets[i + 1], :4].astype(np.float32)
        L = len(bb)
        breaks = np.ones(L, bool)
        breaks[1:] = np.linalg.norm(bb[1:, 0] - bb[:-1, 2], axis=-1) > 2.0
        res = np.repeat(np.arange(L), 4)
        names = np.tile(np.array(["N", "CA", "C", "O"], dtype=object), L)
        atoms = AtomTable(element=np.array([n[0] for n in names], dtype=object), name=names,
                          resname=np.full(4 * L, "UNK", dtype=object), residue_index=res,
                          coords=bb.reshape(-1, 3).copy(), hetero=np.zeros(4 * L, bool),
                          chain_id=np.full(4 * L, "A", dtype=object))
        out.append(Protein(str(pid), str(d["seqs"][i]), np.full(L, "A", dtype=object),
                           d["start_resnum"][i] + np.arange(L), np.full(L, "", dtype=object), bb, breaks, atoms,
                           source="structuredb_subset.npz"))
    return out


@pytest.fixture(scope="session")
def sdb_proteins() -> list[Protein]:
    return structuredb_proteins()


@pytest.fixture(scope="session")
def legacy_items() -> dict[str, dict]:
    """Items of the real legacy-pandas ATOM3D LMDB (10 PDB structures, incl. 2HHB with hemes and waters)."""
    from pa_geo.formats.atom3d import Atom3DLMDB

    ds = Atom3DLMDB(DATA / "atom3d" / "legacy_pdb_generic")
    return {ds[i]["id"]: ds[i] for i in range(len(ds))}
