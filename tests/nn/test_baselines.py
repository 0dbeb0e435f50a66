"""Baseline encoders: frozen mean-embedding probe, ScalarMix, the adapter-without-cross-attention ablation."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.cross_attention import NodeSetCrossAttention, ResidueCrossAttention
from pa_geo.nn.baselines import MeanEmbeddingEncoder, ScalarMix, SummedLevelsTransformer

LEVELS = {"emb_esm1b_33": 12, "emb_esm_if1_3": 6}


def _batch(sizes=(5, 8, 3)) -> Batch:
    graphs = []
    for i, n in enumerate(sizes):
        g = torch.Generator().manual_seed(i)
        src = torch.arange(n - 1)
        d = Data(edge_index=torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], 1), num_nodes=n,
                 pos=torch.cumsum(torch.randn(n, 3, generator=g) * 2.2, 0))
        for name, dim in LEVELS.items():
            d[name] = torch.randn(n, dim, generator=g)
        graphs.append(d)
    return Batch.from_data_list(graphs)


def test_mean_embedding_concat_is_the_per_graph_mean_of_frozen_embeddings():
    enc = MeanEmbeddingEncoder(LEVELS)
    batch = _batch()
    out = enc(batch)
    node = torch.cat([batch["emb_esm1b_33"], batch["emb_esm_if1_3"]], dim=-1)
    assert torch.equal(out.node, node) and torch.equal(out.batch, batch.batch)
    expected = torch.stack([node[batch.batch == b].mean(0) for b in range(3)])
    torch.testing.assert_close(out.graph, expected)
    assert enc.graph_dim == enc.node_dim == 18 and not list(enc.parameters())


def test_mean_embedding_scalar_mix_is_trainable_and_projects_unequal_dims():
    enc = MeanEmbeddingEncoder(LEVELS, mix="scalar_mix")
    out = enc(_batch())
    assert out.node.shape == (16, 12) and out.graph.shape == (3, 12) and enc.graph_dim == 12
    out.graph.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    single = MeanEmbeddingEncoder({"emb_esm1b_33": 12})(Data(emb_esm1b_33=torch.ones(4, 12), num_nodes=4))
    assert single.graph.shape == (1, 12) and torch.equal(single.batch, torch.zeros(4, dtype=torch.long))


def test_scalar_mix_equals_weighted_sum_and_learns_its_weights():
    mix = ScalarMix([4, 4, 4])
    assert mix.proj is None and mix.out_dim == 4
    layers = [torch.randn(7, 4) for _ in range(3)]
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
        mix.gamma.fill_(2.0)
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    torch.testing.assert_close(mix(layers), 2.0 * sum(wk * h for wk, h in zip(w, layers)))
    mix(layers).sum().backward()
    assert mix.weights.grad.abs().sum() > 0 and mix.gamma.grad is not None
    with pytest.raises(ValueError, match="2 layers"):
        mix(layers[:2])
    proj = ScalarMix([4, 8], out_dim=5)
    assert proj.out_dim == 5 and proj([torch.randn(3, 4), torch.randn(3, 8)]).shape == (3, 5)


def test_summed_levels_transformer_sums_projected_levels_before_self_attention():
    torch.manual_seed(0)
    model = SummedLevelsTransformer(LEVELS, d_model=8, n_heads=2).eval()
    assert isinstance(model, ProteinAdapter) and model.fusion_first
    assert not any(isinstance(m, (NodeSetCrossAttention, ResidueCrossAttention)) for m in model.modules())
    assert len(model.blocks[0].attn) == 1  # one stream after the sum
    batch = _batch()
    assert model(batch).shape == (16, 8)
    # the first block sees exactly sum_l LayerNorm(Linear(x_l))
    seen = {}
    model.blocks[0].register_forward_pre_hook(lambda mod, args: seen.update(x=args[0][0]))
    model(batch)
    expected = sum(model.project[n](batch[n]) for n in LEVELS)
    torch.testing.assert_close(seen["x"], expected)


def test_baselines_reject_bad_config_and_missing_fields():
    with pytest.raises(ConfigError):
        MeanEmbeddingEncoder({})
    with pytest.raises(ConfigError, match="mix"):
        MeanEmbeddingEncoder(LEVELS, mix="max")
    batch = _batch()
    del batch["emb_esm_if1_3"]
    with pytest.raises(ConfigError, match="emb_esm_if1_3"):
        MeanEmbeddingEncoder(LEVELS)(batch)
