"""Every ablation of pa_geo.nn.baselines' table, in its documented constructor form, on real residue graphs with
TWO levels: builds, runs forward + backward, every parameter gets a gradient, and ``required_batch_attributes``
names exactly what the encoder reads."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from pa_geo.nn import (AdapterEncoder, GraphHead, MeanEmbeddingEncoder,
                       MultiScalePredictor, NodeHead, ProteinAdapter, SummedLevelsTransformer)
from pa_geo.nn.cross_attention import NodeSetCrossAttention, ResidueCrossAttention
from tests.helpers.nn_graphs import residue_graph

LEVELS = {"emb_near_8": 24, "emb_proteinmpnn_3": 16}
D = 32


def protein(chain: int) -> Data:
    data = residue_graph(chain, 4)
    g = torch.Generator().manual_seed(10 + chain)
    for name, dim in LEVELS.items():
        data[name] = torch.randn(data.num_nodes, dim, generator=g)
    return data


def real_batch() -> Batch:
    return Batch.from_data_list([protein(0), protein(1)])


def full_encoder(adapter: nn.Module | None = None, **predictor_kw) -> AdapterEncoder:
    adapter = adapter or ProteinAdapter(LEVELS, d_model=D, n_heads=4)
    kw = dict(hidden_dim=D, num_scales=2, pool="topk", pool_kwargs={"ratio": 0.5}) | predictor_kw
    return AdapterEncoder(adapter, MultiScalePredictor(D, **kw))


ABLATIONS: dict[str, Callable[[], nn.Module]] = {
    "full": lambda: full_encoder(),
    "linear_probe": lambda: MeanEmbeddingEncoder(LEVELS),
    "mlp_probe": lambda: MeanEmbeddingEncoder(LEVELS),
    "scalar_mix": lambda: MeanEmbeddingEncoder(LEVELS, mix="scalar_mix"),
    "summed_levels_transformer": lambda: full_encoder(SummedLevelsTransformer(LEVELS, d_model=D, n_heads=4)),
    "no_self_attention": lambda: full_encoder(ProteinAdapter(LEVELS, d_model=D, n_heads=4, self_attention=False)),
    "no_cross_attention": lambda: full_encoder(ProteinAdapter(LEVELS, d_model=D, n_heads=4, cross_attention=False)),
    "residue_level_mixing": lambda: full_encoder(ProteinAdapter(LEVELS, d_model=D, n_heads=4, cross_scope="residue")),
    "no_final_merge": lambda: full_encoder(merge="last"),
    "global_pool_only": lambda: full_encoder(pool="none", num_scales=1, pool_kwargs=None),
}
HEAD_HIDDEN = {"linear_probe": None}


@pytest.mark.parametrize("level", ["graph", "node"])
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_trains_every_parameter_on_real_graphs_with_two_levels(name, level):
    torch.manual_seed(0)
    encoder = ABLATIONS[name]()
    head_cls = GraphHead if level == "graph" else NodeHead
    width = encoder.graph_dim if level == "graph" else encoder.node_dim
    head = head_cls(width, 3, hidden_dim=HEAD_HIDDEN.get(name, 16))
    batch = real_batch()
    out = encoder(batch)
    assert out.graph.shape == (2, encoder.graph_dim) and out.node.shape == (batch.num_nodes, encoder.node_dim)
    pred = head(out)
    pred.square().mean().backward()
    params = [*encoder.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters())]
    dead = [n for n, p in params if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not dead, f"{name}: parameters without gradient: {dead}"


def test_each_ablation_changes_the_one_thing_it_names():
    def adapter(enc: nn.Module) -> nn.Module:
        return enc.adapter

    def crosses(enc: nn.Module) -> set[type]:
        return {type(m) for m in enc.modules() if isinstance(m, (NodeSetCrossAttention, ResidueCrossAttention))}

    full, summed = ABLATIONS["full"](), ABLATIONS["summed_levels_transformer"]()
    assert crosses(full) == {NodeSetCrossAttention}
    assert crosses(ABLATIONS["residue_level_mixing"]()) == {ResidueCrossAttention}
    assert not crosses(ABLATIONS["no_cross_attention"]()) and not crosses(summed)
    assert len(adapter(ABLATIONS["no_cross_attention"]()).blocks[0].ffn) == 2  # separate streams, late fusion
    assert len(adapter(summed).blocks[0].ffn) == 1 and adapter(summed).fusion_first  # one stream
    for a, b in ((full, summed),):  # same depth, width, heads and predictor
        assert len(adapter(a).blocks) == len(adapter(b).blocks) and adapter(a).d_model == adapter(b).d_model
        assert adapter(a).n_heads == adapter(b).n_heads and a.graph_dim == b.graph_dim
    assert adapter(ABLATIONS["no_self_attention"]()).blocks[0].attn is None
    assert ABLATIONS["no_final_merge"]().graph_dim == D and full.graph_dim == 2 * D


@pytest.mark.parametrize("name", ["full", "scalar_mix", "summed_levels_transformer"])
@pytest.mark.parametrize("attention", ["global", "graph"])
def test_required_batch_attributes_are_exactly_what_the_encoder_reads(name, attention):
    torch.manual_seed(0)
    if name == "scalar_mix":
        encoder = ABLATIONS[name]()
    else:
        adapter = (SummedLevelsTransformer if name != "full" else ProteinAdapter)(
            LEVELS, d_model=D, n_heads=4, attention=attention, edge_dim=2 if attention == "graph" else None)
        encoder = full_encoder(adapter, edge_dim=2)
    encoder.eval()
    fields = encoder.required_batch_attributes
    assert isinstance(fields, list) and len(set(fields)) == len(fields)
    assert set(LEVELS) <= set(fields) and "batch" in fields
    full = real_batch()
    reference = encoder(full)
    only = Batch.from_data_list([Data(num_nodes=g.num_nodes, **{f: g[f] for f in fields if f != "batch"})
                                 for g in (protein(0), protein(1))])
    got = encoder(only)
    torch.testing.assert_close(got.graph, reference.graph)  # nothing else is read
    torch.testing.assert_close(got.node, reference.node)
    for field in fields:  # and every listed field matters
        reduced = full.clone()
        del reduced[field]
        try:
            out = encoder(reduced)
            changed = not (torch.allclose(out.graph, reference.graph) and torch.allclose(out.node, reference.node))
        except Exception:  # noqa: BLE001 - a clear error is what a missing required field should give
            changed = True
        assert changed, f"{name}: removing {field!r} changed nothing"
