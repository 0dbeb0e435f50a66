"""Small-molecule graphs from SMILES (PEER's PDBbind / BindingDB give ligands as SMILES only).

A SMILES that cannot be parsed raises :class:`~pa_geo.errors.DatasetError` naming the record, so the data path skips
that one record with a count. Upstream does the same: TorchDrug's ``ProteinLigandDataset.load_sequence``
(``torchdrug/data/dataset.py``) drops a sample whose ``Chem.MolFromSmiles`` fails ("Ignore this sample").
"""
from __future__ import annotations

import logging

import torch
from torch_geometric.data import Data

from pa_geo.errors import DatasetError
from pa_geo.graphs.schema import ELEMENT_INDEX, ELEMENTS

# bond-feature columns of edge_attr: single, double, triple, aromatic
BOND_DIM = 4
_ORDER_COLUMN = {1: 0, 2: 1, 3: 2, 1.5: 3}


def smiles_graph(smiles: str, ligand_id: str = "ligand") -> Data:
    """Parse ``smiles`` (pysmiles, hydrogens implicit) into a bond graph; ``ligand_id`` names the record in errors.

    Returns ``Data`` with ``element`` [M] int64 (index into ``pa_geo.graphs.schema.ELEMENTS``, last = other),
    ``edge_index`` [2, E] (both directions of every bond), ``edge_attr`` [E, 4] float32 one-hot bond type
    (single, double, triple, aromatic), ``protein_id`` = ``ligand_id``. Raises :class:`DatasetError` (one line)
    for an unparsable or empty SMILES.
    """
    import pysmiles

    if not isinstance(smiles, str) or not smiles.strip():
        raise DatasetError(f"{ligand_id}: ligand SMILES must be a non-empty string, got {smiles!r:.60}")
    if smiles.count("(") != smiles.count(")"):  # pysmiles accepts an unclosed branch, RDKit does not
        raise DatasetError(f"{ligand_id}: cannot parse SMILES {smiles[:60]!r}: unbalanced branch parentheses")
    logging.getLogger("pysmiles").setLevel(logging.ERROR)  # stereo / aromaticity notes are not errors here
    try:
        try:
            mol = pysmiles.read_smiles(smiles, reinterpret_aromatic=False)
        except Exception as err:  # noqa: BLE001 - pysmiles raises bare ValueError / KeyError / custom types
            # RDKit-written aromatic SMILES (e.g. caffeine's c(=O)) fail pysmiles' valence check only: relax that,
            # keep every syntax check (unclosed rings / branches still fail above and are not retried)
            if "valence" not in str(err):
                raise
            mol = pysmiles.read_smiles(smiles, reinterpret_aromatic=False, strict=False)
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"{ligand_id}: cannot parse SMILES {smiles[:60]!r}: {' '.join(str(err).split())}") from None
    nodes = sorted(mol.nodes)
    if not nodes:
        raise DatasetError(f"{ligand_id}: SMILES {smiles[:60]!r} has no atoms")
    pos = {n: i for i, n in enumerate(nodes)}
    other = len(ELEMENTS) - 1
    element = torch.tensor([ELEMENT_INDEX.get(str(mol.nodes[n].get("element", "")).upper(), other) for n in nodes],
                           dtype=torch.long)
    src, dst, attr = [], [], []
    for a, b, data in mol.edges(data=True):
        order = data.get("order", 1)
        if order == 0:  # '.'-separated fragments carry no bond
            continue
        feat = [0.0] * BOND_DIM
        feat[_ORDER_COLUMN.get(order, 0)] = 1.0
        src += [pos[a], pos[b]]
        dst += [pos[b], pos[a]]
        attr += [feat, feat]
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    edge_attr = torch.tensor(attr, dtype=torch.float32).reshape(-1, BOND_DIM)
    return Data(element=element, edge_index=edge_index, edge_attr=edge_attr, num_nodes=len(nodes),
                protein_id=ligand_id)
