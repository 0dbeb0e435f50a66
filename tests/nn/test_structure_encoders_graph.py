"""GearNet's relational graph / spatial line graph and GVP's edge features, checked against brute-force versions of
their definitions on small hand-made proteins (pa_geo.nn.structure_encoders.relational_graph / gvp_features)."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

pytest.importorskip("torch_cluster")

from pa_geo.nn.structure_encoders.gvp_features import edge_features, orientation_vectors  # noqa: E402
from pa_geo.nn.structure_encoders.inputs import segment_index  # noqa: E402
from pa_geo.nn.structure_encoders.relational_graph import (  # noqa: E402
    gearnet_edge_features, gearnet_graph, spatial_line_graph,
)


def _hand_made(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """18 residues (chain 0: 0-10, chain 1: 11-17) scattered in a 16 A box; residue 7 has no position."""
    g = np.random.default_rng(seed)
    pos = torch.from_numpy(g.uniform(0.0, 16.0, size=(18, 3)).astype(np.float32))
    mask = torch.ones(18, dtype=torch.bool)
    mask[7] = False
    pos[7] = 0.0
    chain = torch.tensor([0] * 11 + [1] * 7)
    return pos, mask, chain


def _expected_edges(pos: torch.Tensor, mask: torch.Tensor, chain: torch.Tensor, offset: int = 0) -> Counter:
    """GearNet's definition, written out pair by pair: (source, target, relation)."""
    n = len(pos)
    d = torch.cdist(pos.double(), pos.double()).numpy()
    out = Counter()
    for i in range(n):
        for j in range(n):
            if chain[i] == chain[j] and abs(j - i) <= 2:
                out[(i + offset, j + offset, j - i + 2)] += 1  # sequential i -> j, relation (j - i) + 2
            if i != j and mask[i] and mask[j] and abs(i - j) >= 5 and d[i, j] < 10.0:
                out[(j + offset, i + offset, 5)] += 1  # radius, into i
        if mask[i]:
            cand = [j for j in range(n) if j != i and mask[j]]
            nearest = sorted(cand, key=lambda j: d[i, j])[:10]
            for j in nearest:
                if abs(i - j) >= 5:
                    out[(j + offset, i + offset, 6)] += 1  # kNN, filtered after the search
    return out


def _as_counter(graph) -> Counter:
    src, dst = graph.edge_index.tolist()
    return Counter(zip(src, dst, graph.relation.tolist()))


def test_gearnet_graph_matches_the_definition_on_a_hand_made_two_chain_protein():
    pos, mask, chain = _hand_made()
    batch = torch.zeros(18, dtype=torch.long)
    graph = gearnet_graph(pos, mask, batch, segment_index(batch, chain))
    assert graph.num_relation == 7 and graph.num_nodes == 18
    got = _as_counter(graph)
    assert got == _expected_edges(pos, mask, chain)
    # no sequential edge joins residue 10 (chain 0) and 11 (chain 1); the unpositioned residue 7 has only
    # sequential edges; the kNN filter really ran after the search (some residue keeps fewer than 10)
    assert not any({s, t} == {10, 11} and r < 5 for s, t, r in got)
    assert all(r < 5 for s, t, r in got if 7 in (s, t))
    knn_in = Counter(t for s, t, r in got if r == 6)
    assert min(knn_in.values()) < 10 and max(knn_in.values()) <= 10


def test_gearnet_graph_never_joins_two_proteins_of_a_batch():
    pos, mask, chain = _hand_made()
    # the same protein twice, at the same coordinates: a batch-blind neighbour search would link the copies
    pos2, mask2, chain2 = torch.cat([pos, pos]), torch.cat([mask, mask]), torch.cat([chain, chain])
    batch = torch.tensor([0] * 18 + [1] * 18)
    graph = gearnet_graph(pos2, mask2, batch, segment_index(batch, chain2))
    src, dst = graph.edge_index
    assert torch.equal(batch[src], batch[dst])
    assert _as_counter(graph) == _expected_edges(pos, mask, chain) + _expected_edges(pos, mask, chain, offset=18)


def test_gearnet_edge_features_follow_torchdrug_edge_gearnet_layout():
    pos, mask, chain = _hand_made()
    batch = torch.zeros(18, dtype=torch.long)
    graph = gearnet_graph(pos, mask, batch, segment_index(batch, chain))
    rtype = torch.arange(18) % 21
    feats = gearnet_edge_features(graph, pos, mask, rtype)
    assert feats.shape == (graph.num_edges, 21 + 21 + 7 + 11 + 1)
    src, dst = graph.edge_index
    e = int(((graph.relation == 5) & ((src - dst).abs() > 10)).nonzero()[0])
    s, t = int(src[e]), int(dst[e])
    assert feats[e, rtype[s]] == 1 and feats[e, 21 + rtype[t]] == 1 and feats[e, 42 + 5] == 1
    assert feats[e, 49 + 10] == 1  # |i - j| clipped at 10
    assert feats[e, -1].item() == pytest.approx(float((pos[s] - pos[t]).norm()), rel=1e-5)
    assert feats[:, :-1].sum(-1).eq(4).all()  # four one-hot blocks
    seven = (src == 7) | (dst == 7)
    assert feats[seven, -1].eq(0).all()  # no distance for the unpositioned residue


def test_spatial_line_graph_pairs_every_edge_meeting_at_a_residue_with_its_angle_bin():
    pos, mask, chain = _hand_made(seed=3)
    batch = torch.zeros(18, dtype=torch.long)
    graph = gearnet_graph(pos, mask, batch, segment_index(batch, chain))
    line = spatial_line_graph(graph, pos, mask, num_angle_bin=8)
    assert line.num_nodes == graph.num_edges and line.num_relation == 8
    src, dst = graph.edge_index.tolist()
    expected = Counter()
    for a in range(graph.num_edges):  # a = (k -> j)
        for b in range(graph.num_edges):  # b = (j -> i)
            k, j, i = src[a], dst[a], dst[b]
            if src[b] != j or not (mask[k] and mask[j] and mask[i]):
                continue
            v1, v2 = (pos[i] - pos[j]).double(), (pos[k] - pos[j]).double()
            angle = math.atan2(float(torch.linalg.cross(v1, v2).norm()), float(v1 @ v2))
            expected[(a, b, min(int(angle / math.pi * 8), 7))] += 1
    assert _as_counter(line) == expected


def test_gvp_edge_and_orientation_features_respect_chains_and_proteins():
    pos, mask, chain = _hand_made()
    batch = torch.zeros(18, dtype=torch.long)
    seg = segment_index(batch, chain)
    orient = orientation_vectors(pos, mask, seg)
    assert orient[10, :, 0].abs().sum() == 0 and orient[11, :, 1].abs().sum() == 0  # chain ends
    assert orient[6, :, 0].abs().sum() == 0 and orient[8, :, 1].abs().sum() == 0  # neighbour 7 has no position
    torch.testing.assert_close(orient[2, :, 0], (pos[3] - pos[2]) / (pos[3] - pos[2]).norm())
    torch.testing.assert_close(orient[3, :, 1], (pos[2] - pos[3]) / (pos[2] - pos[3]).norm())
    edge_index = torch.tensor([[0, 12, 3], [5, 1, 3 + 1]])
    scalars, vectors = edge_features(pos, edge_index, seg)
    assert scalars.shape == (3, 32) and vectors.shape == (3, 3, 1)
    assert scalars[1, 16:].abs().sum() == 0  # across chains: no offset encoding
    torch.testing.assert_close(scalars[0, 16:24], torch.cos(-5 * torch.exp(torch.arange(0, 16, 2) *
                                                                           -(math.log(1e4) / 16))))
    d = float((pos[0] - pos[5]).norm())
    centres = torch.linspace(0, 20, 16)
    torch.testing.assert_close(scalars[0, :16], torch.exp(-((d - centres) / 1.25) ** 2))
    torch.testing.assert_close(vectors[2, :, 0], (pos[3] - pos[4]) / (pos[3] - pos[4]).norm())
