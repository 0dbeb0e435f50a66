"""One RBF for the graph builders, the predictor and the e3nn conv (``pa_geo.graphs.features.rbf``)."""
from __future__ import annotations

import numpy as np
import torch

from pa_geo.graphs.features import rbf
from pa_geo.nn import equivariant_conv, predictor
from pa_geo.nn.predictor import MultiScalePredictor
from tests.helpers.nn_graphs import chains, residue_batch


def first_version_rbf(distance: torch.Tensor, d_max: float, num_rbf: int) -> torch.Tensor:
    """The residue / atom graph builders' RBF before it became the shared one (reference for bit-identity)."""
    centres = torch.linspace(0.0, float(d_max), num_rbf, dtype=torch.float32)
    z = distance.to(torch.float32).unsqueeze(-1) - centres
    z.mul_(num_rbf / float(d_max)).square_()
    return z.clamp_(max=60.0).neg_().exp_()


def real_distances() -> torch.Tensor:
    ca = torch.from_numpy(np.concatenate([c[:, 1] for c in chains()]))
    d = torch.cdist(ca[:300], ca[:300]).flatten()
    return torch.cat([d, torch.tensor([0.0, 1e-7, 10.0, 1e4])])


def test_rbf_is_bit_identical_to_the_graph_builders_first_version():
    d = real_distances()
    for d_max, n in ((10.0, 16), (4.5, 8), (24.0, 16)):
        ref = first_version_rbf(d, d_max, n)
        assert torch.equal(rbf(d, d_max, n), ref)
        buf = torch.empty(d.numel(), n + 3)
        rbf(d, d_max, n, out=buf[:, :n])
        assert torch.equal(buf[:, :n], ref)
        assert torch.equal(rbf(d.double(), d_max, n), ref)


def test_rbf_takes_gradients_to_positions_with_the_same_values():
    pos = torch.from_numpy(chains()[0][:50, 1].copy()).requires_grad_(True)
    d = (pos[1:] - pos[:-1]).norm(dim=-1)
    out = rbf(d, 10.0, 16)
    assert torch.equal(out.detach(), first_version_rbf(d.detach(), 10.0, 16))
    out.sum().backward()
    assert pos.grad is not None and pos.grad.abs().sum() > 0


def test_predictor_and_e3nn_conv_expand_distances_with_the_shared_rbf(monkeypatch):
    assert predictor.rbf is rbf and equivariant_conv.rbf is rbf
    calls = []
    monkeypatch.setattr(predictor, "rbf", lambda *a, **k: calls.append(a[1:]) or rbf(*a, **k))
    batch = residue_batch((0,), dim=8)
    model = MultiScalePredictor(8, 16, num_scales=1, pool="none", num_rbf=12, rbf_max=20.0)
    feats = model._edge_features(batch.edge_index, batch.pos, None, None, batch.num_nodes)
    dist = (batch.pos[batch.edge_index[0]] - batch.pos[batch.edge_index[1]]).norm(dim=-1)
    assert calls == [(20.0, 12)] and torch.equal(feats, rbf(dist, 20.0, 12))
