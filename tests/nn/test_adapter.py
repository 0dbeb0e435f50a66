"""ProteinAdapter behaviour: shapes, batching, equivariance, frozen inputs, the cross-attention switch."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.cross_attention import NodeSetCrossAttention, ResidueCrossAttention

CROSS = (NodeSetCrossAttention, ResidueCrossAttention)

ALL_LEVELS = {"emb_esm1b_33": 24, "emb_esm_if1_3": 12, "emb_proteinmpnn_3": 8}
D = 16


def make_graph(n: int, levels: dict[str, int], seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n - 1)
    ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
    extra = torch.randint(0, n, (2, n), generator=g)
    extra = extra[:, extra[0] != extra[1]]
    ei = torch.cat([ei, extra, extra.flip(0)], dim=1)
    pos = torch.cumsum(torch.randn(n, 3, generator=g) * 2.2, 0)  # a random-walk trace: the geometric bias reads it
    data = Data(edge_index=ei, num_nodes=n, pos=pos)
    for name, dim in levels.items():
        data[name] = torch.randn(n, dim, generator=g)
    return data


def make_batch(levels: dict[str, int], sizes=(7, 12, 5)) -> Batch:
    return Batch.from_data_list([make_graph(n, levels, seed=i) for i, n in enumerate(sizes)])


def levels_of(k: int) -> dict[str, int]:
    return dict(itertools.islice(ALL_LEVELS.items(), k))


@pytest.mark.parametrize("k,attention,fusion", list(itertools.product([1, 2, 3], ["global", "graph"],
                                                                  ["concat", "sum", "gated"])))
def test_output_shape_all_configurations(k, attention, fusion):
    torch.manual_seed(0)
    model = ProteinAdapter(levels_of(k), d_model=D, n_heads=4, attention=attention, fusion=fusion)
    batch = make_batch(levels_of(k))
    out = model(batch)
    assert out.shape == (batch.num_nodes, D) and model.out_dim == D
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("chunk", [None, 60])  # 60 scores: forces multi-graph buckets and query chunks
def test_graph_output_is_the_same_alone_and_in_a_batch(attention, chunk, k):
    torch.manual_seed(0)
    levels = levels_of(k)
    model = ProteinAdapter(levels, d_model=D, attention=attention, attn_chunk_elements=chunk).eval()
    graphs = [make_graph(n, levels, seed=i) for i, n in enumerate([7, 12, 5, 6, 13])]
    batched = model(Batch.from_data_list(graphs))
    offset = 0
    for g in graphs:
        alone = model(Batch.from_data_list([g]))
        torch.testing.assert_close(batched[offset:offset + g.num_nodes], alone, atol=1e-5, rtol=1e-4)
        offset += g.num_nodes
    assert torch.allclose(model(graphs[0]), model(Batch.from_data_list([graphs[0]])))  # plain Data: no .batch


@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("bias", [False, True])
def test_node_outputs_are_permutation_equivariant(attention, bias):
    """Without a positional term, and with the geometric bias's distance term (positions move with their nodes);
    the sequence-separation term reads node order on purpose."""
    torch.manual_seed(0)
    levels = levels_of(3)
    model = ProteinAdapter(levels, d_model=D, attention=attention, geometric_bias=bias, bias_seq_sep=False).eval()
    g = make_graph(15, levels, seed=3)
    perm = torch.randperm(15)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(15)
    h = Data(edge_index=inverse[g.edge_index], num_nodes=15, pos=g.pos[perm], **{n: g[n][perm] for n in levels})
    torch.testing.assert_close(model(h), model(g)[perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("k,attention,fusion", [(3, "global", "concat"), (3, "graph", "gated"), (3, "global", "sum"),
                                              (2, "global", "gated"), (2, "graph", "sum")])
def test_frozen_inputs_get_no_gradient_and_every_adapter_weight_does(k, attention, fusion):
    torch.manual_seed(0)
    levels = levels_of(k)
    model = ProteinAdapter(levels, d_model=D, attention=attention, fusion=fusion).train()
    batch = make_batch(levels)
    before = {n: batch[n].clone() for n in levels}
    model(batch).pow(2).sum().backward()
    for n in levels:
        assert not batch[n].requires_grad and batch[n].grad is None
        assert torch.equal(batch[n], before[n])
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"adapter weights without gradient: {missing}"


def test_cross_attention_false_removes_parameters_and_the_path():
    torch.manual_seed(0)
    levels = levels_of(2)
    with_cross = ProteinAdapter(levels, d_model=D, cross_attention=True).eval()
    without = ProteinAdapter(levels, d_model=D, cross_attention=False).eval()
    crosses = [m for m in with_cross.modules() if isinstance(m, CROSS)]
    assert len(crosses) == 2 and not any(isinstance(m, CROSS) for m in without.modules())
    assert not any("cross" in n for n, _ in without.named_parameters())
    n_cross = sum(p.numel() for n, p in with_cross.named_parameters() if ".cross" in n)
    assert n_cross > 0
    assert sum(p.numel() for p in with_cross.parameters()) - n_cross == sum(p.numel() for p in without.parameters())

    batch = make_batch(levels)
    changed = batch.clone()
    changed["emb_esm_if1_3"] = torch.randn_like(batch["emb_esm_if1_3"])
    for model, leaks in ((without, False), (with_cross, True)):
        a = model.forward_levels(batch)["emb_esm1b_33"]
        b = model.forward_levels(changed)["emb_esm1b_33"]
        assert (not torch.allclose(a, b)) == leaks


def test_single_level_has_no_cross_attention_even_when_requested():
    model = ProteinAdapter(levels_of(1), d_model=D, cross_attention=True)
    assert not any(isinstance(m, CROSS) for m in model.modules())


def test_fusion_first_sums_projected_levels_then_runs_one_stream():
    torch.manual_seed(0)
    levels = levels_of(3)
    model = ProteinAdapter(levels, d_model=D, cross_attention=False, fusion="sum", fusion_first=True).eval()
    assert len(model.blocks[0].attn) == 1 and model.fusion is None
    batch = make_batch(levels)
    out = model(batch)
    assert out.shape == (batch.num_nodes, D)
    assert list(model.forward_levels(batch)) == ["fused"]
    per_level = ProteinAdapter(levels, d_model=D, cross_attention=False, fusion="sum")
    assert len(per_level.blocks[0].attn) == 3
    with pytest.raises(ConfigError, match="fusion_first"):
        ProteinAdapter(levels, d_model=D, cross_attention=True, fusion_first=True)


def test_graph_mode_with_edge_features():
    torch.manual_seed(0)
    levels = levels_of(2)
    model = ProteinAdapter(levels, d_model=D, attention="graph", edge_dim=5).eval()
    batch = make_batch(levels)
    batch.edge_attr = torch.randn(batch.edge_index.shape[1], 5)
    a = model(batch)
    batch.edge_attr = torch.randn(batch.edge_index.shape[1], 5)
    assert a.shape == (batch.num_nodes, D) and not torch.allclose(a, model(batch))


def test_bad_configuration_and_bad_batches_raise_config_errors():
    levels = levels_of(2)
    for kwargs in ({"attention": "dense"}, {"fusion": "mean"}, {"d_model": 10, "n_heads": 4},
                   {"cross_scope": "protein"}):
        with pytest.raises(ConfigError):
            ProteinAdapter(levels, **kwargs)
    with pytest.raises(ConfigError, match="empty"):
        ProteinAdapter({})
    model = ProteinAdapter(levels, d_model=D)
    batch = make_batch(levels)
    del batch["emb_esm_if1_3"]
    with pytest.raises(ConfigError, match="emb_esm_if1_3.*missing"):
        model(batch)
    batch = make_batch({"emb_esm1b_33": 24, "emb_esm_if1_3": 13})
    with pytest.raises(ConfigError, match=r"expected \[N, 12\]"):
        model(batch)
    no_edges = make_batch(levels)
    del no_edges["edge_index"]
    with pytest.raises(ConfigError, match="edge_index"):
        ProteinAdapter(levels, d_model=D, attention="graph")(no_edges)
