"""Cross-attention between the representation levels of the :class:`~pa_geo.nn.adapter.ProteinAdapter`.

* :class:`NodeSetCrossAttention` (``cross_scope="nodes"``, the default): level l's queries attend over the NODES of
  the other levels of the same protein. Global mode: over all nodes of the protein (variable-length SDPA sharing
  the self-attention's length buckets, no L x L matrix kept); graph mode: over each node's graph neighbours plus
  itself (bipartite message passing on the same edges). With K > 2 levels the keys are the concatenated nodes of
  all K - 1 other levels (one softmax over (K - 1) * L keys), so the levels compete for attention.
* :class:`ResidueCrossAttention` (``cross_scope="residue"``): per-residue level mixing:
  level l's token at residue i sees only the other levels' tokens of residue i. With K = 2 a softmax over one key
  is always 1, so the layer is exactly ``out_l(V_l(x_other))`` and is built as such (no query/key weights that
  could never get a gradient); with K >= 3 queries and keys choose among the K - 1 other levels.

Projections are per level (levels are different modalities): a level's keys/values are made by its own ``kv``
projection, whichever level queries them; each level has its own query and output projection. Query / key / value
projections carry no bias (:data:`pa_geo.nn.attention.NO_QKV_BIAS`). With ``bias_spec`` each querying level has its
own :class:`~pa_geo.nn.geometric_bias.GeometricBias` (a per-head score term from the adapter's geometric map of
the pair: distance and sequence separation; the same term for a key node in every other level): global mode inside
the varlen chunks, graph mode added to the edge scores.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from pa_geo.errors import ConfigError
from pa_geo.nn.attention import GraphContext
from pa_geo.nn.geometric_bias import BiasSpec, GeometricBias
from pa_geo.nn.varlen import DEFAULT_CHUNK_ELEMENTS, LengthBuckets, varlen_attention


def check_sizes(n_levels: int, d_model: int, n_heads: int) -> None:
    """One-line :class:`ConfigError` for fewer than two levels or a width the heads do not divide."""
    if n_levels < 2:
        raise ConfigError(f"cross-level attention needs at least two levels (got {n_levels})")
    if d_model % n_heads:
        raise ConfigError(f"d_model={d_model} is not divisible by n_heads={n_heads}")


def edge_attention(q: Tensor, k: Tensor, v: Tensor, edge_index: Tensor, dropout_p: float = 0.0,
                   bias: Tensor | None = None) -> Tensor:
    """Bipartite multi-head attention along edges: q [N_dst, H, dh], k / v [N_src, H, dh], edge_index [2, E]
    (source row 0 -> target row 1), ``bias`` [E, H] added to the scores or None -> [N_dst, H, dh]; softmax over each
    target's incoming edges (PyG ``softmax``).
    Takes projected q / k / v rather than being PyG's bipartite ``TransformerConv``: keys and values come from each
    source level's own projection, computed once per block and shared by every level that queries them."""
    src, dst = edge_index
    alpha = (q[dst] * k[src]).sum(-1) / math.sqrt(q.shape[-1])                 # [E, H]
    if bias is not None:
        alpha = alpha + bias
    alpha = softmax(alpha, dst, num_nodes=q.shape[0])
    alpha = F.dropout(alpha, p=dropout_p, training=dropout_p > 0)
    return scatter(v[src] * alpha.unsqueeze(-1), dst, dim=0, dim_size=q.shape[0], reduce="sum")


class NodeSetCrossAttention(nn.Module):
    """Each level attends over the nodes of the other levels of the same protein (see the module docstring).

    forward(xs: K tensors [N, d], context: :class:`LengthBuckets` (global) or :class:`GraphContext` (graph, with
    ``groups = K - 1`` when K > 2)) -> K tensors [N, d]. ``attn_dropout`` drops attention weights in training.
    ``bias_spec``: a geometric bias per querying level (the context then carries the geometry).
    """

    def __init__(self, n_levels: int, d_model: int, n_heads: int, attn_dropout: float = 0.0,
                 chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                 bias_spec: BiasSpec | None = None) -> None:
        super().__init__()
        check_sizes(n_levels, d_model, n_heads)
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.chunk_elements, self.use_checkpoint = chunk_elements, use_checkpoint
        self.query = nn.ModuleList(nn.Linear(d_model, d_model, bias=False) for _ in range(n_levels))
        self.kv = nn.ModuleList(nn.Linear(d_model, 2 * d_model, bias=False) for _ in range(n_levels))
        self.out = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_levels))
        self.bias = nn.ModuleList(GeometricBias(n_heads, bias_spec) for _ in range(n_levels)) \
            if bias_spec is not None else None

    def forward(self, xs: list[Tensor], context: LengthBuckets | GraphContext) -> list[Tensor]:
        n, d = xs[0].shape
        heads, dh = self.n_heads, d // self.n_heads
        p = self.attn_dropout if self.training else 0.0
        kvs = [proj(x).view(n, 2, heads, dh) for proj, x in zip(self.kv, xs)]
        outs = []
        for lvl, x in enumerate(xs):
            q = self.query[lvl](x).view(n, heads, dh)
            others = kvs[1 - lvl].unsqueeze(0) if len(xs) == 2 else \
                torch.stack([kv for m, kv in enumerate(kvs) if m != lvl])                  # [G, N, 2, H, dh]
            k, v = others[:, :, 0], others[:, :, 1]
            bias = self.bias[lvl] if self.bias is not None else None
            if isinstance(context, GraphContext):
                edges = context.edge_index if len(xs) == 2 else context.group_edge_index
                if edges is None:
                    raise ValueError(f"cross-attention over {len(xs) - 1} levels needs a GraphContext built "
                                     f"with groups={len(xs) - 1}")
                if bias is not None:
                    if context.edge_map is None:
                        raise ValueError("a geometric bias needs a GraphContext built with the nodes' geometry")
                    bias = bias.edges(context.edge_map).repeat(len(xs) - 1, 1)             # [G * E', H]
                h = edge_attention(q, k.reshape(-1, heads, dh), v.reshape(-1, heads, dh), edges, p, bias)
            else:
                h = varlen_attention(q, k, v, context, p, self.chunk_elements, self.use_checkpoint, bias=bias)
            outs.append(self.out[lvl](h.reshape(n, d)))
        return outs


class ResidueCrossAttention(nn.Module):
    """Per-residue level mixing (``cross_scope="residue"``): level l's token at residue i attends to the other
    levels' tokens of residue i only. xs: K tensors [N, d] -> K tensors [N, d] (the context is ignored).

    K == 2: exactly ``out_l(V_l(x_other))`` (``value`` and ``out`` projections only). K >= 3: per-level query/key
    projections (``query_key``) and a softmax over the K - 1 other levels' tokens of the residue.
    """

    def __init__(self, n_levels: int, d_model: int, n_heads: int, attn_dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(n_levels, d_model, n_heads)
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.value = nn.ModuleList(nn.Linear(d_model, d_model, bias=False) for _ in range(n_levels))
        self.out = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_levels))
        self.query_key = nn.ModuleList(nn.Linear(d_model, 2 * d_model, bias=False) for _ in range(n_levels)) \
            if n_levels > 2 else None
        self.register_buffer("others", ~torch.eye(n_levels, dtype=torch.bool), persistent=False)

    def forward(self, xs: list[Tensor], context: object = None) -> list[Tensor]:
        if self.query_key is None:  # two levels: the single key's weight is 1
            return [out(val(x)) for out, val, x in zip(self.out, self.value, reversed(xs))]
        n, d, k_levels = *xs[0].shape, len(xs)
        shape = (n, k_levels, self.n_heads, d // self.n_heads)
        qk = torch.stack([proj(x) for proj, x in zip(self.query_key, xs)], dim=1).view(n, k_levels, 2, d)
        q, k = (t.reshape(shape).transpose(1, 2) for t in qk.unbind(2))               # [N, H, K, dh]
        v = torch.stack([proj(x) for proj, x in zip(self.value, xs)], dim=1).view(shape).transpose(1, 2)
        p = self.attn_dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=self.others, dropout_p=p)  # [N, H, K, dh]
        h = h.transpose(1, 2).reshape(n, k_levels, d)
        return [proj(h[:, i]) for i, proj in enumerate(self.out)]
