"""Structure encoders on CA traces and in any pose: the CA-trace geometry they read (virtual bond angles and
dihedrals, the pseudo-CB direction; pa_geo.nn.structure_encoders.ca_geometry) against the graph side's dihedral
(pa_geo.graphs.geometry), GearNet's sequential relations for every |i - j| < 5, its reduced
("sequential") edge message passing, and every encoder's invariance with a centred and a far pose, full backbones
and CA-only inputs alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

pytest.importorskip("torch_cluster")

from pa_geo.graphs import residue_graph  # noqa: E402
from pa_geo.graphs.geometry import dihedral  # noqa: E402
from pa_geo.io.protein import Protein  # noqa: E402
from pa_geo.nn.adapter import ProteinAdapter  # noqa: E402
from pa_geo.nn.structure_encoders import GearNetEncoder, GVPEncoder  # noqa: E402
from pa_geo.nn.structure_encoders.ca_geometry import ca_angle_features, ca_trace_cb_direction  # noqa: E402
from pa_geo.nn.structure_encoders.inputs import segment_index  # noqa: E402
from pa_geo.nn.structure_encoders.relational_graph import (  # noqa: E402
    gearnet_graph, sequential_subgraph, spatial_line_graph,
)
from tests.helpers.proteins import structuredb_chains  # noqa: E402

LEVELS = {"emb_near_8": 16, "emb_proteinmpnn_ca_3": 8}


def ca_trace(p: Protein) -> Protein:
    bb = p.backbone.copy()
    bb[:, [0, 2, 3]] = np.nan
    return Protein(p.id + "_ca", p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks)


def posed(p: Protein, pose: str) -> Protein:
    """Rotated about its centroid and centred at the origin, or also 1000 A away."""
    q, r = np.linalg.qr(np.random.default_rng(11).normal(size=(3, 3)))
    rot = q * np.sign(np.diag(r))
    rot[:, 0] *= np.sign(np.linalg.det(rot))
    bb = p.backbone.astype(np.float64)
    bb = (bb - np.nanmean(bb[:, 1], 0)) @ rot.T + (np.array([1000.0, -1000.0, 1000.0]) if pose == "far" else 0.0)
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb.astype(np.float32),
                   p.chain_breaks)


def batch_of(proteins: list[Protein]) -> Batch:
    graphs = []
    for i, p in enumerate(proteins):
        g = residue_graph(p, radius=10.0)
        gen = torch.Generator().manual_seed(i)
        for name, dim in LEVELS.items():
            g[name] = torch.randn(g.num_nodes, dim, generator=gen)
        graphs.append(g)
    return Batch.from_data_list(graphs)


def test_ca_angles_match_the_graph_sides_dihedral_and_a_written_out_bond_angle():
    """Against pa_geo.graphs.geometry.dihedral (IUPAC sign, what the residue graph's ``geom`` uses) on real chains,
    a full backbone and a CA trace; angles and masks zero / False where a neighbour is missing."""
    for p in (structuredb_chains()[1], ca_trace(structuredb_chains()[2])):
        g = residue_graph(p, radius=10.0)
        got = ca_angle_features(g.pos, g.pos_mask, g.chain_index).double().numpy()   # [L, 9]
        ca, L = g.pos.double().numpy(), len(p)
        for i in range(L):
            inner = 1 <= i < L - 1
            before, after = 2 <= i < L - 1, 1 <= i < L - 2
            assert list(got[i, 6:]) == [inner, before, after]
            if inner:
                u, v = ca[i - 1] - ca[i], ca[i + 1] - ca[i]
                theta = np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
                np.testing.assert_allclose(got[i, 0:2], [np.cos(theta), np.sin(theta)], atol=1e-4)
            for ok, cols, first in ((before, slice(2, 4), i - 2), (after, slice(4, 6), i - 1)):
                if ok:
                    t = dihedral(*(ca[first + m][None] for m in range(4)))[0]
                    np.testing.assert_allclose(got[i, cols], [np.cos(t), np.sin(t)], atol=1e-4)
                else:
                    assert not got[i, cols].any()


def test_pseudo_cb_on_a_ca_trace_is_defined_inside_chains_and_rotates_with_the_input():
    p = ca_trace(structuredb_chains()[1])
    g = residue_graph(p, radius=10.0)
    cb = ca_trace_cb_direction(g.pos, g.pos_mask, g.chain_index)
    norms = cb.norm(dim=-1)
    assert torch.allclose(norms[1:-1], torch.ones(len(p) - 2), atol=1e-5) and norms[[0, -1]].sum() == 0
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(2)))[0]
    rot = rot * torch.sign(torch.det(rot))
    moved = ca_trace_cb_direction(g.pos @ rot.T + 50.0, g.pos_mask, g.chain_index)
    torch.testing.assert_close(moved, cb @ rot.T, atol=1e-5, rtol=0)
    # it points away from the chain's local curvature, like a real CB: opposite the CA(i-1), CA(i+1) midpoint
    mid = (g.pos[:-2] + g.pos[2:]) / 2 - g.pos[1:-1]
    assert ((cb[1:-1] * mid).sum(-1) < 0).float().mean() > 0.9


def test_gvp_on_a_ca_trace_reads_angles_and_three_vectors_per_residue():
    enc = GVPEncoder(node_scalars=8, node_vectors=2)
    batch = batch_of([ca_trace(structuredb_chains()[1])])
    (scalars, vectors), _, _ = enc.featurize(batch)
    assert scalars[:, :6].abs().sum() == 0  # phi / psi / omega: undefined on a CA trace
    assert scalars[2:-2, 6:15].abs().sum(-1).gt(0).all()  # the CA angles are there
    assert vectors[1:-1].norm(dim=1).gt(0.99).all()  # CA -> next, CA -> previous, pseudo-CB


def test_gearnet_has_a_sequential_relation_for_every_pair_closer_than_five_in_sequence():
    p = structuredb_chains()[2]
    g = residue_graph(p, radius=10.0)
    batch = torch.zeros(len(p), dtype=torch.long)
    graph = gearnet_graph(g.pos, g.pos_mask, batch, segment_index(batch, g.chain_index), max_seq_offset=4)
    src, dst = graph.edge_index
    for offset in range(-4, 5):
        sel = graph.relation == offset + 4
        assert torch.equal((dst - src)[sel], torch.full((int(sel.sum()),), offset))
        assert int(sel.sum()) == len(p) - abs(offset)
    spatial = graph.relation >= 9
    assert ((src - dst)[spatial].abs() >= 5).all() and spatial.any()
    seq = sequential_subgraph(graph, 4)
    assert seq.num_edges == 2 * sum(len(p) - k for k in range(1, 5)) and (seq.relation != 4).all()
    full, reduced = (spatial_line_graph(gr, g.pos, g.pos_mask, 8).num_edges for gr in (graph, seq))
    assert reduced * 10 < full  # the reduced edge message passing is an order of magnitude smaller


ENCODERS = {
    "gvp": lambda: GVPEncoder(sequence_levels=LEVELS),
    "gearnet": lambda: GearNetEncoder(hidden_dim=32, num_layers=3, sequence_levels=LEVELS),
    "gearnet_sequential_edge_mp": lambda: GearNetEncoder(hidden_dim=32, num_layers=3, sequence_levels=LEVELS,
                                                         edge_message_passing="sequential"),
    "gearnet_full_edge_mp": lambda: GearNetEncoder(hidden_dim=16, num_layers=2, edge_message_passing=True),
    "adapter": lambda: ProteinAdapter(LEVELS, d_model=64),
}


@pytest.mark.parametrize("trace", [False, True], ids=["backbone", "ca_only"])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_every_structure_encoder_is_invariant_with_a_centred_and_a_far_pose(name, trace):
    torch.manual_seed(0)
    enc = ENCODERS[name]().eval()
    chains = [structuredb_chains()[i] for i in (2, 1)]
    proteins = [ca_trace(p) for p in chains] if trace else chains

    def run(batch):
        out = enc(batch)
        return (out, out) if isinstance(out, torch.Tensor) else (out.node, out.graph)

    with torch.no_grad():
        ref_node, ref_graph = run(batch_of(proteins))
        for pose in ("centred", "far"):
            node, graph = run(batch_of([posed(p, pose) for p in proteins]))
            scale = float(ref_node.abs().max())
            torch.testing.assert_close(node, ref_node, atol=2e-4 * scale, rtol=1e-4)
            torch.testing.assert_close(graph, ref_graph, atol=2e-4 * float(ref_graph.abs().max()), rtol=1e-4)


def test_gearnet_sequential_edge_message_passing_trains_every_parameter():
    torch.manual_seed(0)
    enc = GearNetEncoder(hidden_dim=16, num_layers=2, sequence_levels=LEVELS, edge_message_passing="sequential")
    out = enc(batch_of([structuredb_chains()[2], ca_trace(structuredb_chains()[1])]))
    (out.node.square().mean() + out.graph.square().mean()).backward()
    dead = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead
    with pytest.raises(Exception, match="edge_message_passing"):
        GearNetEncoder(edge_message_passing="line")
