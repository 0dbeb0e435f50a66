"""E(3) equivariance of the e3nn conv and rotation invariance of a predictor built on it (real residue graphs)."""
from __future__ import annotations

import pytest
import torch
from e3nn import o3
from torch_geometric.data import Batch

from pa_geo.errors import ConfigError
from pa_geo.nn.equivariant_conv import EquivariantConv
from pa_geo.nn.predictor import MultiScalePredictor
from tests.helpers.nn_graphs import residue_batch, residue_graph

D = 24


def rotated(batch: Batch, rot: torch.Tensor, shift: torch.Tensor) -> Batch:
    out = batch.clone()
    out.pos = batch.pos @ rot.T + shift
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_scalars_invariant_vectors_rotate(seed):
    torch.manual_seed(seed)
    batch = residue_batch(chains=(0, 1), dim=D)
    conv = EquivariantConv(D, 16, edge_dim=2)
    rot, shift = o3.rand_matrix(), torch.randn(3) * 20
    moved = rotated(batch, rot, shift)
    s1, v1 = conv(batch.x, batch.edge_index, batch.edge_attr, batch.pos, return_vectors=True)
    s2, v2 = conv(batch.x, moved.edge_index, moved.edge_attr, moved.pos, return_vectors=True)
    assert s1.shape == (batch.num_nodes, 16) and v1.shape == (batch.num_nodes, 8, 3)
    assert torch.allclose(s1, s2, atol=1e-4)
    d1 = o3.Irreps("1o").D_from_matrix(rot)
    assert torch.allclose(v1 @ d1.T, v2, atol=1e-4)
    assert v1.abs().max() > 1e-3  # the vectors are not trivially zero


def test_output_depends_on_geometry_and_reflection_is_handled():
    torch.manual_seed(0)
    batch = residue_batch(chains=(0,), dim=D)
    conv = EquivariantConv(D, 16)
    base = conv(batch.x, batch.edge_index, pos=batch.pos)
    bent = batch.pos.clone()
    bent[:40] += torch.tensor([0.0, 0.0, 3.0])
    assert not torch.allclose(base, conv(batch.x, batch.edge_index, pos=bent), atol=1e-3)
    # E(3) includes inversion: scalars (0e) are unchanged, 1o vectors flip sign.
    s, v = conv(batch.x, batch.edge_index, pos=batch.pos, return_vectors=True)
    s_inv, v_inv = conv(batch.x, batch.edge_index, pos=-batch.pos, return_vectors=True)
    assert torch.allclose(s, s_inv, atol=1e-4) and torch.allclose(v, -v_inv, atol=1e-4)


def test_needs_positions_and_matching_edge_features():
    batch = residue_batch(chains=(0,), dim=D)
    with pytest.raises(ConfigError, match="positions"):
        EquivariantConv(D, 8)(batch.x, batch.edge_index)
    with pytest.raises(ConfigError, match="edge_attr"):
        EquivariantConv(D, 8, edge_dim=3)(batch.x, batch.edge_index, batch.edge_attr, batch.pos)


@pytest.mark.parametrize("pool", ["topk", "graclus"])
def test_predictor_with_e3nn_is_rotation_invariant(pool):
    torch.manual_seed(0)
    model = MultiScalePredictor(D, 32, num_scales=2, conv="e3nn", pool=pool, edge_dim=2).eval()
    data = residue_graph(1, D)
    batch = Batch.from_data_list([data])
    moved = rotated(batch, o3.rand_matrix(), torch.tensor([5.0, -40.0, 12.0]))
    with torch.no_grad():
        a, b = model(batch.x, batch), model(moved.x, moved)
    assert torch.allclose(a.graph, b.graph, atol=1e-4) and torch.allclose(a.node, b.node, atol=1e-4)
