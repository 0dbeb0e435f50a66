"""Real-size graphs for the pooling / predictor / head tests, built from real PDB chains.

``tests/data/nn_real_chains.npz``: 4 chains of ProMod3's StructureDB (1A6J_B 157, 1AGJ_A 242, 12AS_A 327,
1B9H_A 384 residues; N, CA, C, O, CB per residue), copied from StructureDB's sample export
(``structuredb_sample.npz``).
Node features are random (seeded) with the right shapes; the geometry and topology are real.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch_cluster
from torch_geometric.data import Batch, Data

from tests.helpers import TEST_DATA

DATA = TEST_DATA / "nn_real_chains.npz"


@functools.lru_cache(maxsize=1)
def chains() -> tuple[np.ndarray, ...]:
    """The 4 chains' coordinates, each ``[L, 5, 3]`` (N, CA, C, O, CB), read once."""
    d = np.load(DATA)
    offsets = np.concatenate([[0], np.cumsum(d["lengths"])])
    return tuple(d["coords"][offsets[i]:offsets[i + 1]] for i in range(len(d["lengths"])))


def residue_graph(chain: int, dim: int, seed: int = 0, radius: float = 10.0) -> Data:
    """CA radius graph of chain ``chain``: ``x [L, dim]`` random, ``pos [L, 3]``, ``edge_attr [E, 2]`` =
    (distance / 10, tanh(sequence separation / 10))."""
    pos = torch.from_numpy(chains()[chain][:, 1].copy())
    edge_index = torch_cluster.radius_graph(pos, r=radius, max_num_neighbors=64)
    src, dst = edge_index
    edge_attr = torch.stack([(pos[src] - pos[dst]).norm(dim=-1) / 10.0,
                             torch.tanh((src - dst).float() / 10.0)], dim=-1)
    g = torch.Generator().manual_seed(seed + chain)
    x = torch.randn(pos.size(0), dim, generator=g)
    return Data(x=x, pos=pos, edge_index=edge_index, edge_attr=edge_attr)


def residue_batch(chains: tuple[int, ...] = (0, 1, 2), dim: int = 32, seed: int = 0) -> Batch:
    """A PyG Batch of real residue graphs (157 / 242 / 327 / 384 nodes)."""
    return Batch.from_data_list([residue_graph(c, dim, seed) for c in chains])


def atom_graph(dim: int, num_atoms: int = 600, radius: float = 4.5, seed: int = 0) -> Batch:
    """A pocket-like atom cloud: the ``num_atoms`` backbone + CB atoms of 12AS_A nearest to its centre,
    radius-``radius`` edges; ``element [M]`` 0 = N, 1 = C, 2 = O (CB is C)."""
    xyz = chains()[2].reshape(-1, 3)
    element = np.tile(np.array([0, 1, 1, 2, 1]), chains()[2].shape[0])
    centre = xyz.mean(axis=0)
    keep = np.sort(np.argsort(np.linalg.norm(xyz - centre, axis=1))[:num_atoms])
    pos = torch.from_numpy(xyz[keep].copy())
    edge_index = torch_cluster.radius_graph(pos, r=radius, max_num_neighbors=64)
    src, dst = edge_index
    edge_attr = torch.stack([(pos[src] - pos[dst]).norm(dim=-1) / 4.5,
                             torch.zeros(src.size(0))], dim=-1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(pos.size(0), dim, generator=g)
    data = Data(x=x, pos=pos, edge_index=edge_index, edge_attr=edge_attr,
                element=torch.from_numpy(element[keep].copy()).long())
    return Batch.from_data_list([data])
