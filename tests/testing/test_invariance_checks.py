"""``pa_geo.testing``: the batch-independence and rigid-motion checks pass on pa_geo's encoders and catch models that
mix proteins of a batch or read absolute coordinates."""
from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

import pa_geo.testing.invariance
from pa_geo.nn import AdapterEncoder, MultiScalePredictor, ProteinAdapter
from pa_geo.testing import assert_batch_independent, assert_rigid_motion_invariant, random_rotation
from tests.helpers.nn_graphs import residue_graph

D = 16


def graphs() -> list:
    out = []
    for chain in (0, 1, 2):
        g = residue_graph(chain, D)
        g.emb_a = g.x
        out.append(g)
    return out


def test_doctest() -> None:
    assert doctest.testmod(pa_geo.testing.invariance, optionflags=doctest.ELLIPSIS).failed == 0


def test_pa_geo_encoders_pass_both_checks() -> None:
    torch.manual_seed(0)
    encoder = AdapterEncoder(ProteinAdapter({"emb_a": D}, d_model=16, n_heads=2),
                             MultiScalePredictor(hidden_dim=16, num_scales=2, pool="topk"))
    assert encoder.predictor.in_dim == 16  # bound from the adapter
    assert_batch_independent(encoder, graphs())
    assert_rigid_motion_invariant(encoder, graphs())


class Absolute(nn.Module):
    """Reads raw coordinates: not invariant."""

    def forward(self, batch: Batch) -> torch.Tensor:
        return batch.pos.sum(-1, keepdim=True)


def test_models_that_break_the_rules_are_named() -> None:
    with pytest.raises(AssertionError, match="changes under a rotation and translation"):
        assert_rigid_motion_invariant(Absolute(), graphs())
    with pytest.raises(AssertionError, match=r"output 'out' of graph 0 differs alone and in a batch of 3"):
        assert_batch_independent(lambda b: b.emb_a - b.emb_a.mean(0), graphs())
    with pytest.raises(ValueError, match="at least two graphs"):
        assert_batch_independent(Absolute(), graphs()[:1])


def test_random_rotation_is_proper() -> None:
    r = random_rotation(torch.Generator().manual_seed(3))
    torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-5, rtol=0)
    assert torch.det(r) > 0
