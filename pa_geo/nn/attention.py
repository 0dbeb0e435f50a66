"""Attention layers of the :class:`~pa_geo.nn.adapter.ProteinAdapter`.

* :func:`varlen_attention` / :class:`GlobalSelfAttention`: every residue of a protein attends to every residue of the
  same protein (never across the proteins of a batch) through ``F.scaled_dot_product_attention``. Graphs are grouped
  into length buckets (padding waste <= ``1 - 1/bucket_ratio``) and long proteins run alone, unpadded; queries are
  chunked so that no call materialises more than ``chunk_elements`` scores nor, for a long protein, more than one
  head's L x L, and each call is gradient-checkpointed, so peak memory stays bounded even on the math SDPA backend
  (CPU with attention dropout): scores are never kept for backward.
  When torch picks a tiled kernel (flash / memory-efficient / cuDNN), which never holds the score matrix, the
  protein runs in one call without chunks or recomputation.
* :class:`GraphSelfAttention`: TransformerConv-style multi-head attention restricted to graph edges (self loops added
  by the caller through :func:`graph_context`), softmax over each node's incoming edges.
* :class:`CrossLevelAttention`: at every node, each level's token attends to the other levels' tokens of that node.

No positional encoding is added anywhere: the frozen embeddings already encode sequence position, so every layer is
equivariant to reordering the nodes of a graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_remaining_self_loops, softmax

DEFAULT_CHUNK_ELEMENTS = 1 << 24  # 16.8 M scores = 64 MiB float32 per SDPA call (one 4096-residue head)
SMALL_CALL_ELEMENTS = 1 << 20     # below 1 M scores (4 MiB) a sequence's heads run in one call


@dataclass(frozen=True)
class LengthBuckets:
    """How :func:`varlen_attention` groups the B graphs of a batch whose nodes are sorted by graph.

    ptr      [B+1] (python ints) node offset of every graph
    buckets  list of lists of graph indices; graphs of one bucket are padded to the bucket's longest graph
    """

    ptr: tuple[int, ...]
    buckets: tuple[tuple[int, ...], ...]


def length_buckets(batch: Tensor, num_graphs: int | None = None, n_heads: int = 1,
                   chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, bucket_ratio: float = 1.25) -> LengthBuckets:
    """Group graphs of similar length: within a bucket ``max_len <= bucket_ratio * min_len`` and the padded score
    tensor ``n_graphs * n_heads * max_len**2`` stays within ``chunk_elements`` (a longer graph gets a bucket alone).

    batch [N] graph index of every node, sorted ascending (PyG ``Batch.batch``).
    """
    if batch.numel() and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("varlen attention needs nodes sorted by graph (PyG Batch order)")
    counts = torch.bincount(batch, minlength=num_graphs or 0).tolist()
    ptr = [0]
    for c in counts:
        ptr.append(ptr[-1] + c)
    order = sorted((c, g) for g, c in enumerate(counts) if c > 0)
    buckets: list[list[int]] = []
    min_len = 0
    for length, g in order:
        if buckets and length <= bucket_ratio * min_len and \
                (len(buckets[-1]) + 1) * n_heads * length * length <= chunk_elements:
            buckets[-1].append(g)
        else:
            buckets.append([g])
            min_len = length
    return LengthBuckets(tuple(ptr), tuple(tuple(b) for b in buckets))


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


_TILED_BACKENDS = (int(SDPBackend.FLASH_ATTENTION), int(SDPBackend.EFFICIENT_ATTENTION),
                   int(SDPBackend.CUDNN_ATTENTION))


def fused_backend_is_tiled(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> bool:
    """True when SDPA would pick a tiled kernel (flash / memory-efficient / cuDNN) that never materialises the
    score matrix, so chunking would only cost time. Uses torch's own backend choice; unknown -> False (chunk)."""
    try:
        return int(torch._fused_sdp_choice(q, k, v, mask, dropout_p)) in _TILED_BACKENDS
    except (AttributeError, RuntimeError, TypeError):
        return False


def chunked_sdpa(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None, dropout_p: float = 0.0,
                 chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                 fused_shortcut: bool = True) -> Tensor:
    """Scaled dot-product attention with queries split so that one call holds at most ``chunk_elements`` scores
    and, for a single sequence (B = 1) longer than ``SMALL_CALL_ELEMENTS`` scores, at most one head's Lq x Lk.

    q [B, H, Lq, dh], k / v [B, H, Lk, dh], key_mask [B, 1, 1, Lk] bool (True = attend) or None -> [B, H, Lq, dh].
    With ``use_checkpoint`` and autograd on, every call's forward is recomputed in backward, so across all layers
    the scores of only one call are alive at a time, in forward *and* backward, whichever SDPA backend runs.
    ``fused_shortcut``: when :func:`fused_backend_is_tiled` (e.g. CPU flash attention without dropout), one plain
    call (those kernels hold O(L) memory). ``chunk_elements=None``: no chunking.
    """
    if fused_shortcut and fused_backend_is_tiled(q, k, v, key_mask, dropout_p):
        return _sdpa(q, k, v, key_mask, dropout_p)
    b, h, lq, _ = q.shape
    lk = k.shape[2]
    chunk = lq
    if chunk_elements is not None:
        cap = min(chunk_elements, max(lq * lk, SMALL_CALL_ELEMENTS)) if b == 1 else chunk_elements
        chunk = max(1, cap // (b * h * lk))
    grad = use_checkpoint and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    outs = []
    for start in range(0, lq, chunk):
        qc = q[:, :, start:start + chunk]
        if grad:
            outs.append(checkpoint(_sdpa, qc, k, v, key_mask, dropout_p, use_reentrant=False))
        else:
            outs.append(_sdpa(qc, k, v, key_mask, dropout_p))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def varlen_attention(q: Tensor, k: Tensor, v: Tensor, buckets: LengthBuckets, dropout_p: float = 0.0,
                     chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                     fused_shortcut: bool = True) -> Tensor:
    """Full self-attention inside each graph of a batch, no attention across graphs.

    q, k, v [N, H, dh] (nodes sorted by graph), buckets from :func:`length_buckets` -> [N, H, dh].
    A bucket holding one graph runs unpadded and unmasked; a bucket of several graphs is padded to its longest graph
    with a key-padding mask (padded query rows are computed and dropped).
    """
    ptr = buckets.ptr
    pieces: list[Tensor] = []
    node_ids: list[Tensor] = []
    for bucket in buckets.buckets:
        if len(bucket) == 1:
            s, e = ptr[bucket[0]], ptr[bucket[0] + 1]
            qb, kb, vb = (t[s:e].transpose(0, 1).unsqueeze(0) for t in (q, k, v))
            out = chunked_sdpa(qb, kb, vb, None, dropout_p, chunk_elements, use_checkpoint, fused_shortcut)
            pieces.append(out[0].transpose(0, 1))
            node_ids.append(torch.arange(s, e, device=q.device))
            continue
        starts = torch.tensor([ptr[g] for g in bucket], device=q.device)
        lengths = torch.tensor([ptr[g + 1] - ptr[g] for g in bucket], device=q.device)
        max_len = int(lengths.max())
        pos = torch.arange(max_len, device=q.device)
        valid = pos[None, :] < lengths[:, None]                         # [b, Lmax]
        idx = torch.where(valid, starts[:, None] + pos[None, :], starts[:, None])
        qb, kb, vb = (t[idx].permute(0, 2, 1, 3) for t in (q, k, v))  # [b, H, Lmax, dh]
        mask = None if bool(valid.all()) else valid[:, None, None, :]
        out = chunked_sdpa(qb, kb, vb, mask, dropout_p, chunk_elements, use_checkpoint, fused_shortcut)
        pieces.append(out.permute(0, 2, 1, 3)[valid])
        node_ids.append(idx[valid])
    if not pieces:
        return q.new_zeros(q.shape)
    ids = torch.cat(node_ids)
    inverse = torch.empty_like(ids)
    inverse[ids] = torch.arange(ids.numel(), device=ids.device)
    return torch.cat(pieces)[inverse]


class GlobalSelfAttention(nn.Module):
    """Multi-head self-attention over all nodes of each graph. x [N, d] -> [N, d] (context: :class:`LengthBuckets`)."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float = 0.0,
                 chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.chunk_elements, self.use_checkpoint = chunk_elements, use_checkpoint
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, context: LengthBuckets) -> Tensor:
        n, d = x.shape
        q, k, v = self.qkv(x).view(n, 3, self.n_heads, d // self.n_heads).unbind(1)
        p = self.attn_dropout if self.training else 0.0
        h = varlen_attention(q, k, v, context, p, self.chunk_elements, self.use_checkpoint)
        return self.out(h.reshape(n, d))


@dataclass(frozen=True)
class GraphContext:
    """Edges graph attention runs over: edge_index [2, E'] with one self loop per node, edge_attr [E', De] or None."""

    edge_index: Tensor
    edge_attr: Tensor | None


def graph_context(edge_index: Tensor, num_nodes: int, edge_attr: Tensor | None = None) -> GraphContext:
    """Add the missing self loops (zero edge features) so every node attends to itself. edge_index [2, E]."""
    ei, ea = add_remaining_self_loops(edge_index, edge_attr, fill_value=0.0, num_nodes=num_nodes)
    return GraphContext(ei, ea)


class GraphSelfAttention(MessagePassing):
    """TransformerConv-style multi-head attention over incoming edges (source j -> target i).

    alpha_ij = softmax_j(q_i . (k_j + e_ij) / sqrt(dh)), out_i = W_o sum_j alpha_ij (v_j + e_ij);
    x [N, d] -> [N, d]; ``edge_dim`` set: edge features [E, edge_dim] are projected and added to keys and values.
    """

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float = 0.0, edge_dim: int | None = None) -> None:
        super().__init__(aggr="add", node_dim=0)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.d_head, self.attn_dropout = n_heads, d_model // n_heads, attn_dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.edge = nn.Linear(edge_dim, d_model, bias=False) if edge_dim else None
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, context: GraphContext) -> Tensor:
        n, d = x.shape
        q, k, v = self.qkv(x).view(n, 3, self.n_heads, self.d_head).unbind(1)
        e = None
        if self.edge is not None:
            if context.edge_attr is None:
                raise ValueError("GraphSelfAttention(edge_dim=...) needs edge_attr on the batch")
            e = self.edge(context.edge_attr).view(-1, self.n_heads, self.d_head)
        h = self.propagate(context.edge_index, q=q, k=k, v=v, e=e, size=(n, n))
        return self.out(h.reshape(n, d))

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, e: Tensor | None, index: Tensor,
                ptr: Tensor | None, size_i: int | None) -> Tensor:
        if e is not None:
            k_j, v_j = k_j + e, v_j + e
        alpha = softmax((q_i * k_j).sum(-1) / math.sqrt(self.d_head), index, ptr, size_i)
        alpha = F.dropout(alpha, p=self.attn_dropout, training=self.training)
        return v_j * alpha.unsqueeze(-1)


class CrossLevelAttention(nn.Module):
    """Per-node attention across representation levels: level l's token at node n queries the *other* levels'
    tokens at node n (own query/key/value/output projections per level, since levels are different modalities).

    xs: K tensors [N, d] -> K tensors [N, d]. Needs K >= 2 (with K == 2 the softmax runs over a single key, so the
    layer is a learned per-level projection of the other level; with K >= 3 the weights choose among levels).
    """

    def __init__(self, n_levels: int, d_model: int, n_heads: int, attn_dropout: float = 0.0) -> None:
        super().__init__()
        if n_levels < 2:
            raise ValueError("cross-level attention needs at least two levels")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.qkv = nn.ModuleList(nn.Linear(d_model, 3 * d_model) for _ in range(n_levels))
        self.out = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_levels))
        self.register_buffer("others", ~torch.eye(n_levels, dtype=torch.bool), persistent=False)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        n, d = xs[0].shape
        qkv = torch.stack([proj(x) for proj, x in zip(self.qkv, xs)], dim=1)       # [N, K, 3d]
        q, k, v = qkv.view(n, len(xs), 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # [N, H, K, dh]
        p = self.attn_dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=self.others, dropout_p=p)  # [N, H, K, dh]
        h = h.permute(0, 2, 1, 3).reshape(n, len(xs), d)
        return [proj(h[:, i]) for i, proj in enumerate(self.out)]
