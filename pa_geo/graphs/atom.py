"""Protein -> atom graph (one node per kept atom) with the fields listed in :mod:`pa_geo.graphs.schema`.

Atoms outside residues (ligands, waters, ions, nucleotides) point through ``atom2residue`` to the residue owning
their nearest residue atom and carry ``atom_in_residue`` False, so residue-level embeddings can be gathered for
every atom. A protein with no residues at all gets ``atom2residue`` zeros and ``num_residues`` 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data

from pa_geo.errors import ConfigError
from pa_geo.graphs.features import rbf, symmetric_edges
from pa_geo.graphs.schema import ATOM_NAME_INDEX, ATOM_NAMES, DEFAULT_NUM_RBF, ELEMENT_INDEX, ELEMENTS
from pa_geo.io.protein import Protein

WATER_NAMES = frozenset({"HOH", "WAT", "H2O", "DOD", "SOL"})
HYDROGENS = frozenset({"H", "D"})


class AtomGraph(Data):
    """A PyG ``Data`` for atom graphs: ``atom2residue`` is offset by ``num_residues`` when batched.

    So in a ``Batch`` ``batch.atom2residue`` indexes the concatenated residues of all graphs, e.g. the rows of a
    residue-level embedding ``[sum(num_residues), D]``.
    """

    def __inc__(self, key: str, value, *args, **kwargs):  # noqa: ANN001 - PyG signature
        if key == "atom2residue":
            return int(self.num_residues)
        return super().__inc__(key, value, *args, **kwargs)


def _vocab_index(values: np.ndarray, index: dict[str, int], other: int) -> np.ndarray:
    """``index[value.strip().upper()]`` (``other`` when absent) for every value; hashes each distinct value once."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = np.fromiter((index.get(str(u).strip().upper(), other) for u in uniq), dtype=np.int64, count=len(uniq))
    return np.append(table, other)[codes]  # NaN (code -1) -> other


def _is_in(values: np.ndarray, names: frozenset[str]) -> np.ndarray:
    """``values.strip().upper() in names`` per element, via the distinct values (string ``np.isin`` sorts)."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = np.fromiter((str(u).strip().upper() in names for u in uniq), dtype=bool, count=len(uniq))
    return np.append(table, False)[codes]


def _nearest_residue(coords: torch.Tensor, res_atoms: np.ndarray, residue_index: np.ndarray,
                     query: np.ndarray) -> np.ndarray:
    """Residue of the nearest residue atom for each atom in ``query`` (indices into the atom table)."""
    from torch_cluster import knn

    if len(query) == 0 or len(res_atoms) == 0:
        return np.zeros(len(query), np.int64)
    assign = knn(coords[res_atoms], coords[query], k=1)  # row 0: query position, row 1: residue-atom position
    out = np.zeros(len(query), np.int64)
    out[assign[0].numpy()] = residue_index[res_atoms[assign[1].numpy()]]
    return out


def atom_graph(protein: Protein, radius: float = 4.5, include_hetero: bool = True,
               include_hydrogens: bool = False, max_num_neighbors: int = 32, num_rbf: int = DEFAULT_NUM_RBF,
               include_water: bool = False, ligand_mask: np.ndarray | None = None) -> AtomGraph:
    """Build the atom graph of ``protein`` from ``protein.atoms`` (schema: :mod:`pa_geo.graphs.schema`).

    Args:
        protein: a protein with an atom table (A atoms, R residues).
        radius: interatomic cutoff in Angstrom for the radius edges.
        include_hetero: keep atoms flagged hetero (ligands, ions, modified residues); water needs
            ``include_water`` as well.
        include_hydrogens: keep H / D atoms.
        max_num_neighbors: cap on radius neighbours per atom (torch-cluster keeps an arbitrary subset, not
            the nearest; the edge set is then symmetrised).
        num_rbf: number of distance RBFs in ``edge_attr`` (centres on ``[0, radius]``).
        include_water: keep water molecules (only with ``include_hetero``).
        ligand_mask: [A] bool over ``protein.atoms`` marking a task's ligand atoms (-> ``is_ligand``); ligand
            atoms are kept whatever ``include_hetero`` says.

    Returns:
        :class:`AtomGraph` with ``pos`` [N, 3], ``element`` [N], ``atom_name_type`` [N], ``is_hetero`` [N],
        ``is_ligand`` [N], ``atom2residue`` [N], ``atom_in_residue`` [N], ``num_residues`` (int R),
        ``edge_index`` [2, E] (symmetric, coalesced), ``edge_attr`` [E, num_rbf], ``protein_id``.
    """
    if not radius > 0 or max_num_neighbors < 1 or num_rbf < 1:
        raise ConfigError(f"atom_graph: radius ({radius}), max_num_neighbors ({max_num_neighbors}) and num_rbf "
                          f"({num_rbf}) must be positive")
    a = protein.atoms
    A = len(a)
    ligand = np.zeros(A, bool) if ligand_mask is None else np.asarray(ligand_mask, bool)
    if ligand.shape != (A,):
        raise ConfigError(f"atom_graph {protein.id}: ligand_mask has shape {ligand.shape}, expected ({A},)")
    element_type = _vocab_index(a.element, ELEMENT_INDEX, len(ELEMENTS) - 1)
    hetero = np.asarray(a.hetero, bool)
    keep = np.isfinite(np.asarray(a.coords, np.float32)).all(1)
    if not include_hydrogens:
        keep &= ~_is_in(a.element, HYDROGENS)
    if not include_hetero:
        keep &= ~hetero | ligand
    elif not include_water:
        keep &= ~_is_in(a.resname, WATER_NAMES) | ligand
    idx = np.flatnonzero(keep)

    coords_all = torch.from_numpy(np.ascontiguousarray(a.coords, dtype=np.float32))
    pos = coords_all[idx]
    res_idx = np.asarray(a.residue_index, np.int64)[idx]
    in_res = res_idx >= 0
    num_residues = len(protein)
    if (~in_res).any():
        all_res_atoms = np.flatnonzero((np.asarray(a.residue_index) >= 0) & np.isfinite(a.coords).all(1))
        res_idx[~in_res] = _nearest_residue(coords_all, all_res_atoms, np.asarray(a.residue_index, np.int64),
                                            idx[~in_res])
    name_type = _vocab_index(a.name[idx], ATOM_NAME_INDEX, len(ATOM_NAMES) - 1)
    name_type[~in_res] = len(ATOM_NAMES) - 1

    N = len(idx)
    if N > 1:
        from torch_cluster import radius_graph

        ei = radius_graph(pos, r=float(radius), loop=False, max_num_neighbors=int(max_num_neighbors))
        # torch-cluster's radius graph is symmetric unless an atom hit the neighbour cap
        capped = np.bincount(ei[1].numpy(), minlength=1).max(initial=0) >= max_num_neighbors
        ei = symmetric_edges([ei], N, [not capped])
    else:
        ei = torch.zeros(2, 0, dtype=torch.long)
    dist = torch.linalg.vector_norm(pos.index_select(0, ei[1]) - pos.index_select(0, ei[0]), dim=-1)
    return AtomGraph(
        pos=pos,
        element=torch.from_numpy(element_type[idx]),
        atom_name_type=torch.from_numpy(name_type),
        is_hetero=torch.from_numpy(hetero[idx]),
        is_ligand=torch.from_numpy(ligand[idx]),
        atom2residue=torch.from_numpy(np.where(num_residues > 0, res_idx, 0)),
        atom_in_residue=torch.from_numpy(in_res),
        num_residues=num_residues,
        edge_index=ei, edge_attr=rbf(dist, radius, num_rbf), protein_id=protein.id, num_nodes=N,
    )
