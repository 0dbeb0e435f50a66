"""Real proteins for tests/backbones (not collected: no ``test_`` prefix)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pa_geo.io.protein import Protein

DATA = Path(__file__).parents[1] / "data"


def structuredb_chains() -> list[Protein]:
    """Three real StructureDB chains (20, 77, 146 residues; tests/data/backbone_chains.npz), N/CA/C/O coordinates."""
    z = np.load(DATA / "backbone_chains.npz")
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
    """``tests/data/<name>`` through ``pa_geo.io.read_structure`` (skips the test when the file is absent)."""
    from pa_geo.io import read_structure

    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return read_structure(path)


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """One intra-op thread while a module runs: on the shared 2-core box, 2 threads under load are ~5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
