"""atom_graph on real ATOM3D frames (2HHB: four chains, hemes, phosphate, waters) against brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.graphs import ATOM_NAMES, ELEMENTS, AtomGraph, atom_graph

pytest.importorskip("torch_cluster")


@pytest.fixture(scope="module")
def hb(legacy_items):
    return frame_to_protein(legacy_items["2hhb.pdb"]["atoms"], "2hhb")


def test_nodes_follow_hetero_water_and_hydrogen_filters(hb):
    a = hb.atoms
    water = np.isin(a.resname.astype(str), ["HOH"])
    assert water.sum() == 221 and (a.resname == "HEM").sum() == 172
    g = atom_graph(hb)
    assert isinstance(g, AtomGraph) and g.num_nodes == len(a) - water.sum()
    assert g.is_hetero.sum() == 172 + 2  # hemes + phosphate
    assert atom_graph(hb, include_water=True).num_nodes == len(a)
    assert atom_graph(hb, include_hetero=False).num_nodes == int((~a.hetero).sum())
    # hydrogens: relabel the elements of ten real atoms and check they are dropped unless asked for
    a2 = type(a)(**{**a.__dict__, "element": a.element.copy()})
    a2.element[:10] = "H"
    hb2 = type(hb)(**{**hb.__dict__, "atoms": a2})
    assert atom_graph(hb2).num_nodes == g.num_nodes - 10
    assert atom_graph(hb2, include_hydrogens=True).num_nodes == g.num_nodes


def test_edges_rbf_and_vocab_match_brute_force(hb):
    g = atom_graph(hb, radius=4.5, max_num_neighbors=64)
    pos = g.pos.double()
    d = torch.cdist(pos, pos)
    ref = ((d <= 4.5) & ~torch.eye(len(pos), dtype=torch.bool)).nonzero().t()
    assert torch.equal(g.edge_index, ref)  # coalesced = row-major sorted
    dist = (g.pos[g.edge_index[1]] - g.pos[g.edge_index[0]]).norm(dim=-1)
    assert g.edge_attr.shape == (g.num_edges, 16)
    assert torch.allclose(g.edge_attr[:, 0], torch.exp(-(dist / (4.5 / 16)) ** 2), atol=1e-5)
    keep = ~np.isin(hb.atoms.resname.astype(str), ["HOH"])
    names = hb.atoms.name[keep].astype(str)
    elements = hb.atoms.element[keep].astype(str)
    assert [ELEMENTS[i] for i in g.element[:5].tolist()] == list(elements[:5])
    assert [ATOM_NAMES[i] for i in g.atom_name_type[:4].tolist()] == list(names[:4]) == ["N", "CA", "C", "O"]
    fe = elements == "FE"
    assert fe.sum() == 4 and torch.all(g.element[torch.from_numpy(fe)] == ELEMENTS.index("FE"))
    assert torch.all(g.atom_name_type[g.is_hetero & ~g.atom_in_residue] == len(ATOM_NAMES) - 1)


def test_atom2residue_points_non_residue_atoms_to_nearest_residue(hb):
    g = atom_graph(hb)
    assert g.num_residues == len(hb) == 574
    inside = g.atom_in_residue
    keep = ~np.isin(hb.atoms.resname.astype(str), ["HOH"])
    assert torch.equal(g.atom2residue[inside], torch.from_numpy(hb.atoms.residue_index[keep])[inside])
    res_atoms = hb.atoms.residue_index >= 0
    res_xyz = torch.from_numpy(hb.atoms.coords[res_atoms])
    nearest = torch.cdist(g.pos[~inside], res_xyz).argmin(1)
    assert torch.equal(g.atom2residue[~inside], torch.from_numpy(hb.atoms.residue_index[res_atoms])[nearest])
    assert (~inside).sum() == 174 and g.atom2residue.max() < len(hb)


def test_batching_offsets_atom2residue_for_embedding_gather(hb, legacy_items):
    other = frame_to_protein(legacy_items["1ahsA.pdb"]["atoms"], "1ahsA")
    g1, g2 = atom_graph(hb), atom_graph(other)
    emb1, emb2 = torch.randn(len(hb), 8), torch.randn(len(other), 8)
    b = Batch.from_data_list([g1, g2])
    assert torch.equal(b.atom2residue, torch.cat([g1.atom2residue, g2.atom2residue + len(hb)]))
    assert torch.equal(b.num_residues, torch.tensor([len(hb), len(other)]))
    gathered = torch.cat([emb1, emb2])[b.atom2residue]
    assert torch.equal(gathered, torch.cat([emb1[g1.atom2residue], emb2[g2.atom2residue]]))
    assert torch.equal(b.edge_index[:, g1.num_edges:], g2.edge_index + g1.num_nodes)


def test_ligand_mask_marks_and_keeps_ligand_atoms(hb):
    hem = hb.atoms.resname == "HEM"
    g = atom_graph(hb, include_hetero=False, ligand_mask=hem)
    assert int(g.is_ligand.sum()) == int(hem.sum()) == 172
    assert g.num_nodes == int((~hb.atoms.hetero).sum()) + 172
