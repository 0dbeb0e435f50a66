"""AdapterEncoder: adapter -> predictor, with a stand-in predictor and (when importable) the real one."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_max_pool

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.encoder import AdapterEncoder
from pa_geo.nn.outputs import EncoderOutput

LEVELS = {"emb_esm1b_33": 20, "emb_esm_if1_3": 10}


class MaxPoolPredictor(nn.Module):
    """Stand-in predictor: linear node map, max readout."""

    def __init__(self, in_dim: int, hidden: int = 6) -> None:
        super().__init__()
        self.in_dim, self.graph_dim, self.node_dim = in_dim, hidden, hidden
        self.lin = nn.Linear(in_dim, hidden)

    def forward(self, x: Tensor, batch) -> EncoderOutput:
        node = self.lin(x)
        return EncoderOutput(graph=global_max_pool(node, batch.batch), node=node, batch=batch.batch)


def _batch(sizes=(6, 9, 4)) -> Batch:
    graphs = []
    for i, n in enumerate(sizes):
        g = torch.Generator().manual_seed(i)
        src = torch.arange(n - 1)
        ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
        d = Data(edge_index=ei, pos=torch.randn(n, 3, generator=g) * 5, num_nodes=n)
        for name, dim in LEVELS.items():
            d[name] = torch.randn(n, dim, generator=g)
        graphs.append(d)
    return Batch.from_data_list(graphs)


def test_encoder_runs_adapter_then_predictor_and_exposes_predictor_dims():
    torch.manual_seed(0)
    adapter = ProteinAdapter(LEVELS, d_model=16, n_heads=4).eval()
    predictor = MaxPoolPredictor(16)
    enc = AdapterEncoder(adapter, predictor)
    batch = _batch()
    out = enc(batch)
    assert isinstance(out, EncoderOutput)
    assert out.graph.shape == (3, 6) and out.node.shape == (19, 6) and torch.equal(out.batch, batch.batch)
    assert enc.graph_dim == 6 and enc.node_dim == 6
    torch.testing.assert_close(out.node, predictor.lin(adapter(batch)))
    out.graph.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_encoder_rejects_mismatched_widths():
    with pytest.raises(ConfigError, match="in_dim=8"):
        AdapterEncoder(ProteinAdapter(LEVELS, d_model=16), MaxPoolPredictor(8))
    bad = MaxPoolPredictor(16)
    bad.graph_dim = None
    with pytest.raises(ConfigError, match="graph_dim"):
        AdapterEncoder(ProteinAdapter(LEVELS, d_model=16), bad)


def test_encoder_with_the_multiscale_predictor():
    try:
        from pa_geo.nn.predictor import MultiScalePredictor
        predictor = MultiScalePredictor(16, hidden_dim=8, num_scales=1, pool="none")
    except ImportError as err:  # torch_scatter / tgp not built yet
        pytest.skip(f"MultiScalePredictor unavailable: {err}")
    enc = AdapterEncoder(ProteinAdapter(LEVELS, d_model=16, n_heads=4), predictor)
    out = enc(_batch())
    assert out.graph.shape == (3, enc.graph_dim) and out.node.shape == (19, enc.node_dim)
