"""residue_graph against brute-force references on real StructureDB chains and ATOM3D frames."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.errors import ConfigError
from pa_geo.graphs import EDGE_ATTR_LAYOUT, EDGE_DIM, ca_frames, edge_attr_layout, residue_graph
from pa_geo.io.protein import Protein

pytest.importorskip("torch_cluster")

RBF, SEP, SAME, DIR = (EDGE_ATTR_LAYOUT[k] for k in ("rbf", "seq_sep", "same_chain", "direction"))


def _edge_set(g) -> set[tuple[int, int]]:
    return set(map(tuple, g.edge_index.t().tolist()))


def _reference_edges(pos: np.ndarray, chain: np.ndarray, radius: float) -> set[tuple[int, int]]:
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    i, j = np.nonzero((d <= radius) & ~np.eye(len(pos), dtype=bool))
    edges = set(zip(i.tolist(), j.tolist()))
    for a in range(len(pos) - 1):
        if chain[a] == chain[a + 1]:
            edges |= {(a, a + 1), (a + 1, a)}
    return edges


def test_schema_fields_and_brute_force_edges(sdb_proteins):
    p = next(q for q in sdb_proteins if 280 <= len(q) <= 320)
    g = residue_graph(p, radius=10.0)
    L = len(p)
    assert g.num_nodes == L and g.pos.shape == (L, 3) and g.pos.dtype == torch.float32
    assert g.residue_type.dtype == torch.int64 and g.residue_type.max() < 21
    assert g.backbone.shape == (L, 4, 3) and g.backbone_mask.shape == (L, 4) and g.backbone_mask.all()
    assert torch.equal(g.residue_number, torch.as_tensor(p.residue_numbers))
    assert g.edge_attr.shape == (g.num_edges, EDGE_DIM) and g.edge_attr.dtype == torch.float32
    assert g.protein_id == p.id and torch.allclose(g.pos, torch.from_numpy(p.ca))
    edges = _edge_set(g)
    assert edges == _reference_edges(p.ca, p.chain_ids, 10.0)
    assert len(edges) == g.num_edges  # deduplicated
    assert (g.edge_index[0] != g.edge_index[1]).all()
    # coalesced: sorted by (source, target)
    key = g.edge_index[0] * L + g.edge_index[1]
    assert torch.all(key[1:] > key[:-1])


def test_edge_features_match_definitions(sdb_proteins):
    p = sdb_proteins[0]
    g = residue_graph(p, radius=10.0, num_rbf=16, max_seq_sep=32)
    s, t = g.edge_index
    d = (g.pos[t] - g.pos[s]).norm(dim=-1)
    centres = torch.linspace(0, 10.0, 16)
    expected = torch.exp(-(((d[:, None] - centres) / (10.0 / 16)) ** 2))
    assert torch.allclose(g.edge_attr[:, RBF], expected, atol=1e-5)
    sep = ((t - s).clamp(-32, 32) / 32.0).float()
    assert torch.allclose(g.edge_attr[:, SEP].squeeze(1), sep)
    assert torch.all(g.edge_attr[:, SAME] == 1)
    # direction: unit vector in the source frame, checked for one edge by explicit Gram-Schmidt
    e = int(torch.argmax((t - s).abs()))
    n, ca, c = (torch.from_numpy(p.backbone[int(s[e]), k]).double() for k in range(3))
    e1 = (c - ca) / (c - ca).norm()
    v = (n - ca) - ((n - ca) @ e1) * e1
    e2 = v / v.norm()
    e3 = torch.linalg.cross(e1, e2)
    u = (g.pos[t[e]] - g.pos[s[e]]).double()
    u = u / u.norm()
    assert torch.allclose(g.edge_attr[e, DIR].double(), torch.stack([e1 @ u, e2 @ u, e3 @ u]), atol=1e-5)
    assert torch.allclose(g.edge_attr[:, DIR].norm(dim=-1), torch.ones(g.num_edges), atol=1e-4)


def test_features_invariant_to_rigid_motion(sdb_proteins):
    p = sdb_proteins[1]
    q = copy.deepcopy(p)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))[0].numpy()
    rot *= np.sign(np.linalg.det(rot))  # a proper rotation
    q.backbone = (p.backbone @ rot.T + np.array([5.0, -3.0, 12.0])).astype(np.float32)
    g1, g2 = residue_graph(p), residue_graph(q)
    assert torch.equal(g1.edge_index, g2.edge_index)
    assert torch.allclose(g1.edge_attr, g2.edge_attr, atol=1e-4)


def test_missing_ca_and_coordinate_free_residues(sdb_proteins):
    p = copy.deepcopy(sdb_proteins[2])
    p.backbone[10, 1] = np.nan  # no CA: centroid of N, C, O
    p.backbone[20] = np.nan  # nothing in the backbone ...
    p.atoms.coords[p.atoms.residue_index == 20] = np.nan  # ... nor in the atom table
    p.backbone[30, 0] = np.nan  # no N: the CA-trace frame CA(29), CA(30), CA(31) instead of N-CA-C
    g = residue_graph(p)
    assert torch.allclose(g.pos[10], torch.from_numpy(p.backbone[10, [0, 2, 3]].mean(0)), atol=1e-5)
    assert g.pos_mask[10] and not g.pos_mask[20] and torch.equal(g.pos[20], torch.zeros(3))
    assert not g.backbone_mask[10, 1]
    nbrs20 = set(g.edge_index[1, g.edge_index[0] == 20].tolist())
    assert nbrs20 == {19, 21}
    on20 = (g.edge_index == 20).any(0)
    assert torch.all(g.edge_attr[on20][:, RBF] == 0) and torch.all(g.edge_attr[on20][:, DIR] == 0)
    from30 = g.edge_index[0] == 30
    frame = torch.from_numpy(ca_frames(g.pos.numpy(), g.pos_mask.numpy(), g.chain_index.numpy())[30])
    unit = g.pos[g.edge_index[1, from30]] - g.pos[30]
    unit = unit / unit.norm(dim=-1, keepdim=True)
    assert torch.allclose(g.edge_attr[from30][:, DIR], unit @ frame.T, atol=1e-5)
    assert torch.all(g.edge_attr[g.edge_index[0] == 31][:, DIR].norm(dim=-1) > 0.99)
    assert torch.isfinite(g.edge_attr).all()


def test_sequence_only_protein():
    p = Protein.from_sequence("seq1", "MKTAYIAKQRQISFVKSHFSRQ")
    g = residue_graph(p, radius=10.0, k=4)
    L = len(p)
    assert _edge_set(g) == {(i, i + 1) for i in range(L - 1)} | {(i + 1, i) for i in range(L - 1)}
    assert torch.equal(g.pos, torch.zeros(L, 3)) and not g.pos_mask.any()
    assert torch.all(g.edge_attr[:, RBF] == 0) and torch.all(g.edge_attr[:, DIR] == 0)
    assert torch.allclose(g.edge_attr[:, SEP].abs(), torch.full((g.num_edges, 1), 1 / 32))
    assert g.residue_type[0] == 10  # M in AMINO_ACIDS order


def test_multichain_atom3d_frame_no_cross_chain_sequence_edges(legacy_items):
    p = frame_to_protein(legacy_items["2hhb.pdb"]["atoms"], "2hhb")
    assert p.chains == ["A", "B", "C", "D"]
    g = residue_graph(p, radius=8.0, sequential=True)
    assert _edge_set(g) == _reference_edges(p.ca, p.chain_ids, 8.0)
    s, t = g.edge_index
    cross = g.chain_index[s] != g.chain_index[t]
    assert cross.any()  # subunit contacts
    assert torch.all(g.edge_attr[cross][:, SAME] == 0) and torch.all(g.edge_attr[cross][:, SEP] == 0)
    # the last residue of chain A and the first of chain B are not sequence neighbours
    last_a = int(np.flatnonzero(p.chain_ids == "A")[-1])
    d = float(np.linalg.norm(p.ca[last_a] - p.ca[last_a + 1]))
    assert ((last_a, last_a + 1) in _edge_set(g)) == (d <= 8.0)


def test_sequence_edge_kept_across_intra_chain_break(sdb_proteins):
    p = copy.deepcopy(sdb_proteins[3])
    p.backbone[40:] += np.array([60.0, 0, 0], np.float32)  # pull the chain apart between 39 and 40
    p.atoms.coords[p.atoms.residue_index >= 40] += np.array([60.0, 0, 0], np.float32)
    p.chain_breaks[40] = True
    g = residue_graph(p, radius=10.0)
    edges = _edge_set(g)
    assert (39, 40) in edges and (40, 39) in edges
    assert not any((i < 40) != (j < 40) for i, j in edges if {i, j} != {39, 40})


def test_knn_and_radius_union(sdb_proteins):
    p = sdb_proteins[4]
    gk = residue_graph(p, radius=None, k=8, sequential=False)
    assert torch.all(torch.bincount(gk.edge_index[1], minlength=len(p)) >= 8)
    gr = residue_graph(p, radius=6.0, sequential=False)
    gu = residue_graph(p, radius=6.0, k=8, sequential=False)
    assert _edge_set(gu) == _edge_set(gr) | _edge_set(gk)
    assert residue_graph(p, radius=6.0, num_rbf=8).edge_attr.shape[1] == edge_attr_layout(8)["direction"].stop


def test_batching_keeps_chain_index(sdb_proteins, legacy_items):
    g1 = residue_graph(frame_to_protein(legacy_items["2hhb.pdb"]["atoms"], "2hhb"))
    g2 = residue_graph(sdb_proteins[0])
    b = Batch.from_data_list([g1, g2])
    assert torch.equal(b.chain_index, torch.cat([g1.chain_index, g2.chain_index]))
    assert torch.equal(b.edge_index[:, g1.num_edges:], g2.edge_index + g1.num_nodes)
    assert b.protein_id == ["2hhb", sdb_proteins[0].id]


@pytest.mark.parametrize("kwargs", [dict(radius=None, k=None), dict(radius=-1.0), dict(k=0), dict(max_seq_sep=0)])
def test_bad_settings_raise_config_error(sdb_proteins, kwargs):
    with pytest.raises(ConfigError):
        residue_graph(sdb_proteins[0], **kwargs)
