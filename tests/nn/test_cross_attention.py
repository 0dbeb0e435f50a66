"""Cross-attention over node sets (the adapter's default) and per-residue level mixing, with TWO levels and the
shipped default arguments on real residue graphs: gradients, what a residue can see, dense references, memory
bounds, and the no-host-sync contract of the blocks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.utils import add_remaining_self_loops, to_dense_adj

from pa_geo.nn import varlen as V
from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.attention import graph_context
from pa_geo.nn.cross_attention import NodeSetCrossAttention, ResidueCrossAttention
from tests.helpers.nn_graphs import residue_batch, residue_graph

LEVELS = {"emb_near_8": 24, "emb_proteinmpnn_3": 16}  # two levels, as every shipped multi-level config
H = 4


def two_level_batch(chains=(0, 1), seed: int = 0) -> Batch:
    """Real chains with the two levels; the first protein is split into two chains halfway (a complex), so the
    geometric bias sees every sequence-separation bucket, the other-chain one included."""
    batch = residue_batch(chains, dim=4, seed=seed)
    batch.chain_index = torch.zeros(batch.num_nodes, dtype=torch.long)
    if len(chains) > 1:
        batch.chain_index[int(batch.ptr[1]) // 2:int(batch.ptr[1])] = 1
    g = torch.Generator().manual_seed(seed)
    for name, dim in LEVELS.items():
        batch[name] = torch.randn(batch.num_nodes, dim, generator=g)
    return batch


def one_protein(chain: int, extra: bool = False) -> Data:
    """One real residue graph with the two level fields (and a third, ``emb_esm_if1_3`` [L, 8], with ``extra``)."""
    data = residue_graph(chain, 4)
    g = torch.Generator().manual_seed(chain)
    for name, dim in {**LEVELS, **({"emb_esm_if1_3": 8} if extra else {})}.items():
        data[name] = torch.randn(data.num_nodes, dim, generator=g)
    return data


def dead_rows(model: torch.nn.Module) -> list[str]:
    """Parameters with an output row (a run of 8 elements for a vector) whose gradient is negligible (<= 1e-6 x the
    largest gradient anywhere): catches a projection the softmax cancels (the query/key rows of a fused qkv weight
    when a softmax runs over one key), not only ``grad is None``. Single vector elements can be tiny by chance."""
    params = list(model.named_parameters())
    missing = [n for n, p in params if p.grad is None]
    if missing:
        return missing
    top = max(float(p.grad.abs().max()) for _, p in params)

    def rows(g: torch.Tensor) -> torch.Tensor:
        if g.dim() > 1:
            return g.reshape(g.shape[0], -1).abs().amax(1)
        return F.pad(g.abs(), (0, -g.numel() % 8), value=float("inf")).view(-1, 8).amax(1)

    return [n for n, p in params if bool((rows(p.grad) <= 1e-6 * top).any())]


@pytest.mark.parametrize("attention", ["global", "graph"])
def test_every_weight_gets_a_gradient_with_two_levels_and_default_arguments(attention):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, attention=attention).train()
    assert any(isinstance(m, NodeSetCrossAttention) for m in model.modules())  # the default cross_scope
    model(two_level_batch()).square().mean().backward()
    assert not dead_rows(model)
    cross, d = model.blocks[0].cross, model.d_model
    q, kv = cross.query[0].weight.grad.abs().mean(), cross.kv[1].weight.grad  # kv rows: d keys, then d values
    assert q > 1e-3 * kv[d:].abs().mean() and kv[:d].abs().mean() > 1e-3 * kv[d:].abs().mean()


@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("scope", ["nodes", "residue"])
def test_a_residue_sees_other_residues_of_the_other_level_only_with_node_scope(attention, scope):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, attention=attention, cross_scope=scope, self_attention=False).eval()
    batch = two_level_batch()
    i = 10
    j = int(batch.edge_index[0][(batch.edge_index[1] == i) & (batch.edge_index[0] != i)][0])  # a neighbour of i
    changed = batch.clone()
    changed["emb_proteinmpnn_3"] = batch["emb_proteinmpnn_3"].clone()
    changed["emb_proteinmpnn_3"][j] += 3.0
    a = model.forward_levels(batch)["emb_near_8"]
    b = model.forward_levels(changed)["emb_near_8"]
    moved = (a - b).abs().amax(1) > 1e-5
    assert bool(moved[i]) == (scope == "nodes")
    assert bool(moved[j])  # residue j of level 0 always sees residue j of level 1
    assert not moved[batch.batch == 1].any()  # never across proteins


def _dense_cross_reference(layer: NodeSetCrossAttention, xs: list[torch.Tensor], allowed: torch.Tensor):
    """allowed [N, N] bool: query node i may attend to key node j (of every other level)."""
    n, d = xs[0].shape
    dh = d // H
    outs = []
    for lvl, x in enumerate(xs):
        q = layer.query[lvl](x).view(n, H, dh).transpose(0, 1)
        others = [m for m in range(len(xs)) if m != lvl]
        kv = [layer.kv[m](xs[m]).view(n, 2, H, dh) for m in others]
        k = torch.cat([t[:, 0] for t in kv]).transpose(0, 1)
        v = torch.cat([t[:, 1] for t in kv]).transpose(0, 1)
        mask = allowed.repeat(1, len(others))[None]
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(0, 1).reshape(n, d)
        outs.append(layer.out[lvl](h))
    return outs


@pytest.mark.parametrize("k_levels", [2, 3])
@pytest.mark.parametrize("attention", ["global", "graph"])
def test_node_set_cross_attention_matches_dense_reference(k_levels, attention):
    torch.manual_seed(1)
    batch = residue_batch((0, 1), dim=4)
    n, d = batch.num_nodes, 32
    layer = NodeSetCrossAttention(k_levels, d, H, chunk_elements=5000).eval()
    xs = [torch.randn(n, d) for _ in range(k_levels)]
    if attention == "global":
        context = V.length_buckets(batch.batch, 2, H, 5000)
        allowed = batch.batch[:, None] == batch.batch[None, :]
    else:
        context = graph_context(batch.edge_index, n, groups=k_levels - 1)
        loops, _ = add_remaining_self_loops(batch.edge_index, num_nodes=n)
        allowed = to_dense_adj(loops, max_num_nodes=n)[0].bool().T  # allowed[i, j]: edge j -> i
    for got, ref in zip(layer(xs, context), _dense_cross_reference(layer, xs, allowed)):
        torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


def test_residue_scope_with_two_levels_is_out_of_value_of_the_other_level():
    torch.manual_seed(2)
    layer = ResidueCrossAttention(2, 32, H)
    assert layer.query_key is None
    assert {n.split(".")[0] for n, _ in layer.named_parameters()} == {"value", "out"}
    xs = [torch.randn(7, 32), torch.randn(7, 32)]
    a, b = layer(xs)
    torch.testing.assert_close(a, layer.out[0](layer.value[0](xs[1])))
    torch.testing.assert_close(b, layer.out[1](layer.value[1](xs[0])))
    model = ProteinAdapter(LEVELS, cross_scope="residue").train()
    model(two_level_batch()).square().mean().backward()
    assert not dead_rows(model)


@pytest.mark.parametrize("attention", ["global", "graph"])
def test_three_levels_attend_over_the_concatenated_other_levels(attention):
    torch.manual_seed(3)
    levels = {**LEVELS, "emb_esm_if1_3": 8}
    batch = two_level_batch()
    batch["emb_esm_if1_3"] = torch.randn(batch.num_nodes, 8)
    model = ProteinAdapter(levels, d_model=32, attention=attention).train()
    out = model(batch)
    assert out.shape == (batch.num_nodes, 32)
    out.square().mean().backward()
    assert not dead_rows(model)


def test_cross_attention_calls_stay_within_the_score_budget_on_a_long_protein(monkeypatch):
    calls: list[tuple[int, int]] = []
    real = V._sdpa

    def spy(q, k, v, mask, p):
        calls.append((q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2], k.shape[2]))
        return real(q, k, v, mask, p)

    monkeypatch.setattr(V, "_sdpa", spy)
    monkeypatch.setattr(V, "fused_backend_is_tiled", lambda *args: False)  # count what the math kernel would hold
    batch = two_level_batch(chains=(3,))  # 384 residues
    n = batch.num_nodes
    budget = H * n * 48
    model = ProteinAdapter(LEVELS, d_model=32, n_heads=H, n_blocks=1, attn_chunk_elements=budget,
                           geometric_bias=False).train()  # with the bias: test_geometric_bias.py
    model(batch).sum().backward()
    assert calls and all(c <= budget for c, _ in calls)
    forward_calls = len(calls) // 2  # every call is recomputed once in backward (checkpointed)
    assert forward_calls == 4 * -(-n // 48)  # 2 self + 2 cross attention calls, each in 8 query chunks


@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("k_levels", [2, 3])
def test_context_is_built_once_and_blocks_never_read_tensors_on_the_host(monkeypatch, attention, k_levels):
    levels = {**LEVELS, "emb_esm_if1_3": 8} if k_levels == 3 else LEVELS
    batch = Batch.from_data_list([one_protein(c, extra=k_levels == 3) for c in (0, 1, 0)])
    model = ProteinAdapter(levels, d_model=32, n_blocks=3, attention=attention, attn_chunk_elements=H * 250 * 250)
    built = []
    real_context = ProteinAdapter.context

    def counting(self, *args):
        built.append(1)
        return real_context(self, *args)

    def host_read(*args, **kwargs):
        raise AssertionError("an adapter block read a tensor value on the host")

    real_block = type(model.blocks[0]).forward
    guarded_runs = []

    def guarded(self, xs, context):
        with monkeypatch.context() as m:
            for name in ("tolist", "item", "__bool__", "__int__", "__float__", "numpy"):
                m.setattr(torch.Tensor, name, host_read)
            with pytest.raises(AssertionError, match="host"):  # the guard is live
                torch.ones(1).item()
            guarded_runs.append(1)
            return real_block(self, xs, context)

    monkeypatch.setattr(ProteinAdapter, "context", counting)
    monkeypatch.setattr(type(model.blocks[0]), "forward", guarded)
    model(batch).sum().backward()
    assert built == [1] and len(guarded_runs) == 3


@pytest.mark.cuda
@pytest.mark.parametrize("attention", ["global", "graph"])
def test_cuda_batch_independence_without_host_syncs(attention):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, attention=attention).cuda().eval()
    graphs = [one_protein(c) for c in (0, 1, 2, 3)]
    batch = Batch.from_data_list(graphs).cuda()
    context = model.context(batch, batch.num_nodes, batch.emb_near_8.device)
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host sync inside the blocks raises
    try:
        xs = [proj(batch[n]) for n, proj in zip(LEVELS, model.project.values())]
        for block in model.blocks:
            xs = block(xs, context)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    with torch.no_grad():
        batched = model(batch)
        for g, s in enumerate(batch.ptr.tolist()[:-1]):
            alone = model(Batch.from_data_list([graphs[g]]).cuda())
            torch.testing.assert_close(batched[s:s + alone.shape[0]], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cls", [NodeSetCrossAttention, ResidueCrossAttention])
def test_bad_sizes_are_one_line_config_errors(cls):
    from pa_geo.errors import ConfigError

    with pytest.raises(ConfigError, match="at least two levels"):
        cls(1, 64, 4)
    with pytest.raises(ConfigError, match="d_model=66 is not divisible by n_heads=4"):
        cls(2, 66, 4)
