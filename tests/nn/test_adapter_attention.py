"""Attention kernels of the adapter against straightforward dense references (varlen SDPA, graph attention,
per-residue level mixing)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.utils import add_remaining_self_loops, coalesce, to_dense_adj, to_dense_batch

from pa_geo.nn import attention as A
from pa_geo.nn import cross_attention as C
from pa_geo.nn import varlen as V

H, DH = 4, 8


def _qkv(lengths: list[int], seed: int = 0, grad: bool = False):
    torch.manual_seed(seed)
    n = sum(lengths)
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    q, k, v = (torch.randn(n, H, DH, requires_grad=grad) for _ in range(3))
    return q, k, v, batch


def _padded_reference(q, k, v, batch):
    """Pad every graph to the longest one, mask padded keys, one SDPA call."""
    dense = [to_dense_batch(t.reshape(t.shape[0], -1), batch) for t in (q, k, v)]
    mask = dense[0][1]
    qd, kd, vd = (d[0].view(d[0].shape[0], d[0].shape[1], H, DH).transpose(1, 2) for d in dense)
    out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=mask[:, None, None, :])
    return out.transpose(1, 2)[mask]


LENGTHS = [3, 17, 5, 40, 41, 1, 100, 16, 18]


@pytest.mark.parametrize("chunk_elements", [None, V.DEFAULT_CHUNK_ELEMENTS, 4 * 40 * 40 * 2, 777])
@pytest.mark.parametrize("fused_shortcut", [True, False])
def test_varlen_attention_matches_padded_masked_reference(chunk_elements, fused_shortcut):
    q, k, v, batch = _qkv(LENGTHS)
    budget = chunk_elements or V.DEFAULT_CHUNK_ELEMENTS
    buckets = V.length_buckets(batch, len(LENGTHS), H, budget)
    out = V.varlen_attention(q, k, v, buckets, chunk_elements=chunk_elements, fused_shortcut=fused_shortcut)
    torch.testing.assert_close(out, _padded_reference(q, k, v, batch), atol=1e-5, rtol=1e-5)


def test_varlen_attention_gradients_match_reference_with_checkpointed_chunks():
    q, k, v, batch = _qkv(LENGTHS, grad=True)
    buckets = V.length_buckets(batch, len(LENGTHS), H, 500)
    w = torch.randn(q.shape)
    (V.varlen_attention(q, k, v, buckets, chunk_elements=500, use_checkpoint=True, fused_shortcut=False) * w).sum().backward()
    got = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    (_padded_reference(q, k, v, batch) * w).sum().backward()
    for g, t in zip(got, (q, k, v)):
        torch.testing.assert_close(g, t.grad, atol=1e-5, rtol=1e-4)


def _grouped_reference(q, k, v, batch):
    """q [N, H, DH], k / v [G, N, H, DH]: node i attends over all G * L_g keys of its graph, by a dense mask."""
    groups, n = k.shape[:2]
    same = batch[:, None] == batch.repeat(groups)[None, :]                        # [N, G*N]
    kk, vv = (t.reshape(groups * n, H, DH).transpose(0, 1) for t in (k, v))
    out = F.scaled_dot_product_attention(q.transpose(0, 1), kk, vv, attn_mask=same[None])
    return out.transpose(0, 1)


@pytest.mark.parametrize("chunk_elements", [None, 777])
def test_varlen_attention_over_key_groups_matches_dense_reference(chunk_elements):
    q, _, _, batch = _qkv(LENGTHS)
    torch.manual_seed(5)
    k, v = (torch.randn(2, q.shape[0], H, DH) for _ in range(2))
    buckets = V.length_buckets(batch, len(LENGTHS), H, 4 * 41 * 41 * 2)
    assert buckets.padded and buckets.singles  # both code paths run
    out = V.varlen_attention(q, k, v, buckets, chunk_elements=chunk_elements, fused_shortcut=False)
    torch.testing.assert_close(out, _grouped_reference(q, k, v, batch), atol=1e-5, rtol=1e-5)
    one = V.varlen_attention(q, k[:1], v[:1], buckets, chunk_elements=chunk_elements)
    torch.testing.assert_close(one, V.varlen_attention(q, k[0], v[0], buckets, chunk_elements=chunk_elements))


def test_plan_from_ptr_equals_plan_from_batch_vector():
    _, _, _, batch = _qkv(LENGTHS)
    a = V.length_buckets(batch, len(LENGTHS), H, 777)
    ptr = [0, *torch.tensor(LENGTHS).cumsum(0).tolist()]
    b = V.length_buckets(ptr=ptr, n_heads=H, chunk_elements=777)
    assert a.ptr == b.ptr == tuple(ptr) and a.buckets == b.buckets and a.singles == b.singles
    assert torch.equal(a.inverse, b.inverse)
    for pa, pb in zip(a.padded, b.padded):
        assert torch.equal(pa.index, pb.index) and torch.equal(pa.rows, pb.rows)
        assert (pa.mask is None) == (pb.mask is None)
    # a bucket of equal lengths needs no mask; one of unequal lengths does
    even = V.length_buckets(ptr=[0, 4, 8, 12, 17], n_heads=1, chunk_elements=10**6)
    assert [p.mask is None for p in even.padded] == [False] and even.buckets == ((0, 1, 2, 3),)


def test_length_buckets_bound_padding_and_score_budget():
    lengths = [3, 17, 5, 40, 41, 1, 100, 16, 18, 20]
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    b = V.length_buckets(batch, len(lengths), n_heads=4, chunk_elements=4 * 41 * 41 * 2, bucket_ratio=1.25)
    assert sorted(g for bucket in b.buckets for g in bucket) == list(range(len(lengths)))
    for bucket in b.buckets:
        ls = [lengths[g] for g in bucket]
        assert max(ls) <= 1.25 * min(ls)
        assert len(bucket) == 1 or len(bucket) * 4 * max(ls) ** 2 <= 4 * 41 * 41 * 2
    assert (6,) in b.buckets and (3, 4) in b.buckets  # 100 alone; 40 and 41 share a bucket
    assert (7, 1, 8, 9) in b.buckets  # 16, 17, 18, 20 within ratio 1.25
    assert b.ptr[-1] == sum(lengths)
    with pytest.raises(ValueError, match="sorted"):
        V.length_buckets(torch.tensor([0, 1, 0]))


def test_chunked_sdpa_respects_budget_and_recomputes_in_backward(monkeypatch):
    calls: list[tuple[int, ...]] = []
    real = V._sdpa

    def spy(q, k, v, mask, p):
        calls.append((q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2],))
        return real(q, k, v, mask, p)

    monkeypatch.setattr(V, "_sdpa", spy)
    L, budget = 300, 4 * 300 * 64
    q, k, v = (torch.randn(1, 4, L, DH, requires_grad=True) for _ in range(3))
    out = V.chunked_sdpa(q, k, v, chunk_elements=budget, use_checkpoint=True, fused_shortcut=False)
    n_fwd = len(calls)
    assert n_fwd == -(-L // 64) and all(c[0] <= budget for c in calls)
    out.sum().backward()
    assert len(calls) == 2 * n_fwd  # checkpointed: each chunk recomputed once in backward
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)

    calls.clear()  # a tiled backend (flash / memory-efficient) needs no chunks: one call, no recomputation
    monkeypatch.setattr(V, "fused_backend_is_tiled", lambda *args: True)
    V.chunked_sdpa(q, k, v, chunk_elements=budget).sum().backward()
    assert len(calls) == 1
    monkeypatch.setattr(V, "fused_backend_is_tiled", lambda *args: False)
    V.chunked_sdpa(q, k, v, chunk_elements=budget).sum()
    assert len(calls) == 1 + n_fwd


def test_long_sequence_calls_hold_one_heads_scores_and_are_all_checkpointed(monkeypatch):
    calls: list[int] = []
    real = V._sdpa

    def spy(q, k, v, mask, p):
        calls.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
        return real(q, k, v, mask, p)

    monkeypatch.setattr(V, "_sdpa", spy)
    monkeypatch.setattr(V, "SMALL_CALL_ELEMENTS", 0)
    L = 64
    q, k, v = (torch.randn(1, 4, L, DH, requires_grad=True) for _ in range(3))
    V.chunked_sdpa(q, k, v, chunk_elements=1 << 30, fused_shortcut=False).sum().backward()
    assert calls == [L * L] * 8  # 4 heads' worth in 4 calls of one head's L x L each, each recomputed once
    calls.clear()
    monkeypatch.setattr(V, "SMALL_CALL_ELEMENTS", 1 << 20)
    V.chunked_sdpa(q, k, v, chunk_elements=1 << 30, fused_shortcut=False).sum().backward()
    assert calls == [4 * L * L] * 2  # short sequence: one call, still checkpointed


def test_tiled_backend_detection_never_claims_tiling_for_the_cpu_math_path():
    q = torch.randn(1, 2, 16, 8)
    assert V.fused_backend_is_tiled(q, q, q, None, 0.5) is False  # CPU SDPA with dropout runs the math kernel


def test_graph_self_attention_matches_dense_adjacency_masked_attention():
    torch.manual_seed(1)
    n, d = 12, H * DH
    edge_index = torch.randint(0, n, (2, 40))
    edge_index = coalesce(edge_index[:, edge_index[0] != edge_index[1]], num_nodes=n)
    layer = A.GraphSelfAttention(d, H).eval()
    x = torch.randn(n, d)
    got = layer(x, A.graph_context(edge_index, n))
    ei, _ = add_remaining_self_loops(edge_index, num_nodes=n)
    adj = to_dense_adj(ei, max_num_nodes=n)[0].bool()        # adj[j, i]: edge j -> i
    conv = layer.conv
    q, k, v = (lin(x).view(n, H, DH).transpose(0, 1) for lin in (conv.lin_query, conv.lin_key, conv.lin_value))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=adj.T[None])  # query i attends to sources j
    ref = layer.out(ref.transpose(0, 1).reshape(n, d))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_graph_self_attention_is_transformer_conv_without_dead_weights():
    layer = A.GraphSelfAttention(H * DH, H, edge_dim=3)
    from torch_geometric.nn import TransformerConv
    assert isinstance(layer.conv, TransformerConv) and layer.conv.lin_skip is None
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"conv.lin_query.weight", "conv.lin_key.weight", "conv.lin_value.weight", "conv.lin_edge.weight",
                     "out.weight", "out.bias"}
    layer.conv.reset_parameters()  # still works without lin_skip


def test_graph_self_attention_uses_edge_features():
    torch.manual_seed(2)
    n, d = 6, H * DH
    ei = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    layer = A.GraphSelfAttention(d, H, edge_dim=3).eval()
    x = torch.randn(n, d)
    a = layer(x, A.graph_context(ei, n, torch.zeros(6, 3)))
    b = layer(x, A.graph_context(ei, n, torch.randn(6, 3)))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="edge_attr"):
        layer(x, A.graph_context(ei, n))


def test_residue_cross_attention_attends_only_to_other_levels_of_the_same_residue():
    torch.manual_seed(3)
    n, d, k_levels = 5, H * DH, 3
    layer = C.ResidueCrossAttention(k_levels, d, H).eval()
    xs = [torch.randn(n, d) for _ in range(k_levels)]
    got = layer(xs)
    for lvl in range(k_levels):
        q = layer.query_key[lvl](xs[lvl]).view(n, 2, H, DH)[:, 0]
        others = [m for m in range(k_levels) if m != lvl]
        keys = torch.stack([layer.query_key[m](xs[m]).view(n, 2, H, DH)[:, 1] for m in others], dim=1)
        vals = torch.stack([layer.value[m](xs[m]).view(n, H, DH) for m in others], dim=1)   # [n, K-1, H, DH]
        scores = torch.einsum("nhd,nkhd->nhk", q, keys) / DH ** 0.5
        ref = torch.einsum("nhk,nkhd->nhd", scores.softmax(-1), vals).reshape(n, d)
        torch.testing.assert_close(got[lvl], layer.out[lvl](ref), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        C.ResidueCrossAttention(1, d, H)
