"""Self-attention layers of the :class:`~pa_geo.nn.adapter.ProteinAdapter` and the per-forward attention context.

* :class:`GlobalSelfAttention`: every residue of a protein attends to every residue of the same protein (never
  across the proteins of a batch), through :func:`~pa_geo.nn.varlen.varlen_attention`.
* :class:`GraphSelfAttention`: PyG's ``TransformerConv`` restricted to graph edges (self loops added once per
  forward by :func:`graph_context`), softmax over each node's incoming edges, plus an output projection.
* :func:`attention_context`: everything the attention layers need that depends on the batch layout only (length
  buckets, gather indices, padding masks; or edges with self loops), built once per forward on the host and shared
  by every level and block, so the layers never synchronise with the device.

Geometric bias (``bias_spec`` given, :mod:`pa_geo.nn.geometric_bias`): global self-attention adds its own learned
per-head bias (a Linear of the adapter's shared geometric map of the pair: CA distance, sequence separation) to the
scores; graph self-attention reads the map per edge as ``TransformerConv`` edge features (after the batch's own
``edge_attr``, if used).
Without it no positional term is added anywhere (the frozen embeddings already encode sequence position), so every
layer is equivariant to reordering the nodes of a graph; the distance term keeps that, the sequence-separation term
(node index offsets within a chain) does not.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv
from torch_geometric.utils import add_remaining_self_loops

from pa_geo.nn.geometric_bias import BiasSpec, GeometricBias, NodeGeometry, PairMap, edge_geometry
from pa_geo.nn.varlen import (DEFAULT_CHUNK_ELEMENTS, SMALL_CALL_ELEMENTS, LengthBuckets,  # noqa: F401  re-exported
                              chunked_sdpa, fused_backend_is_tiled, graph_ptr, length_buckets, varlen_attention,
                              with_geometry)


NO_QKV_BIAS = """Query / key / value projections carry no bias (as in PaLM / LLaMA): a key bias b_k adds q_i . b_k
to every score of query i, which the softmax cancels, so it could never get a gradient; a value bias passes the
attention unchanged and is the output projection's bias again."""


class GlobalSelfAttention(nn.Module):
    """Multi-head self-attention over all nodes of each graph. x [N, d] -> [N, d] (context: :class:`LengthBuckets`,
    with geometry when ``bias_spec`` is given). Bias-free q/k/v projection (:data:`NO_QKV_BIAS`), output projection
    with bias; ``bias_spec``: a :class:`GeometricBias` of its own added to the scores."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float = 0.0,
                 chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                 bias_spec: BiasSpec | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.chunk_elements, self.use_checkpoint = chunk_elements, use_checkpoint
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.bias = GeometricBias(n_heads, bias_spec) if bias_spec is not None else None

    def forward(self, x: Tensor, context: LengthBuckets) -> Tensor:
        n, d = x.shape
        q, k, v = self.qkv(x).view(n, 3, self.n_heads, d // self.n_heads).unbind(1)
        p = self.attn_dropout if self.training else 0.0
        h = varlen_attention(q, k, v, context, p, self.chunk_elements, self.use_checkpoint, bias=self.bias)
        return self.out(h.reshape(n, d))


@dataclass(frozen=True)
class GraphContext:
    """Edges graph attention runs over: edge_index [2, E'] with one self loop per node, edge_attr [E', De] or None
    (the batch's edge features, then the geometric map when there is a bias), ``edge_map`` [E', K]: the adapter's
    geometric map of those edges (:meth:`PairMap.edges`) or None.

    ``groups`` > 1 (cross-attention over G other levels): ``group_edge_index`` [2, G * E'] repeats the edges with
    sources shifted by ``m * N`` for group m, so a target node attends over its neighbours in all G levels at once.
    """

    edge_index: Tensor
    edge_attr: Tensor | None
    num_nodes: int = 0
    groups: int = 1
    group_edge_index: Tensor | None = None
    edge_map: Tensor | None = None


def graph_context(edge_index: Tensor, num_nodes: int, edge_attr: Tensor | None = None, groups: int = 1,
                  nodes: NodeGeometry | None = None, pair_map: PairMap | None = None) -> GraphContext:
    """Add the missing self loops (zero edge features) so every node attends to itself. edge_index [2, E].
    ``nodes`` + ``pair_map``: the edges' geometric map, also appended to ``edge_attr`` as features."""
    ei, ea = add_remaining_self_loops(edge_index, edge_attr, fill_value=0.0, num_nodes=num_nodes)
    grouped = None
    if groups > 1:
        shift = torch.arange(groups, device=ei.device).repeat_interleave(ei.shape[1]) * num_nodes
        grouped = torch.stack([ei[0].repeat(groups) + shift, ei[1].repeat(groups)])
    edge_map = None
    if nodes is not None and pair_map is not None:
        edge_map = pair_map.edges(edge_geometry(nodes, ei, pair_map.spec))
        ea = edge_map if ea is None else torch.cat([ea.to(edge_map.dtype), edge_map], dim=-1)
    return GraphContext(ei, ea, num_nodes, groups, grouped, edge_map)


def attention_context(batch: object, num_nodes: int, mode: str, n_heads: int,
                      chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, groups: int = 1,
                      device: torch.device | None = None, pair_map: PairMap | None = None,
                      edge_attr: bool = True) -> LengthBuckets | GraphContext:
    """The per-forward attention context of ``batch`` (PyG ``Batch``/``Data`` with ``num_nodes`` nodes).

    ``mode="global"``: :class:`LengthBuckets` from ``batch.ptr`` (else ``batch.batch``; one graph when neither),
    one host read in all. ``mode="graph"``: :class:`GraphContext` from ``batch.edge_index`` (+ ``edge_attr`` when
    ``edge_attr``) with ``groups`` other-level copies for cross-attention. ``pair_map``: with the nodes' geometry
    (:meth:`NodeGeometry.of_batch`: ``pos``, ``pos_mask``, ``chain_index``) and its maps for the geometric bias
    (computed here, once per forward, for every layer). Raises
    ``ValueError`` when graph mode has no edges or a bias has no ``pos``.
    """
    device = device or torch.device("cpu")
    nodes = NodeGeometry.of_batch(batch, num_nodes, device) if pair_map is not None else None
    if mode == "graph":
        edge_index = getattr(batch, "edge_index", None)
        if edge_index is None:
            raise ValueError("the batch has no edge_index")
        return graph_context(edge_index, num_nodes, getattr(batch, "edge_attr", None) if edge_attr else None,
                             groups, nodes, pair_map)
    buckets = length_buckets(ptr=graph_ptr(batch, num_nodes), n_heads=n_heads,
                             chunk_elements=chunk_elements or DEFAULT_CHUNK_ELEMENTS, device=device)
    return buckets if nodes is None else with_geometry(buckets, nodes, pair_map)


class _TransformerConvNoRoot(TransformerConv):
    """``TransformerConv(root_weight=False)`` without the weights that could never get a gradient: the ``lin_skip``
    Linear PyG 2.7 still builds (and never uses) in that case, and the key bias (see :data:`NO_QKV_BIAS`); the query
    and value biases go too, as in the global mode."""

    def __init__(self, in_channels: int, out_channels: int, heads: int, dropout: float,
                 edge_dim: int | None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, concat=True, dropout=dropout, edge_dim=edge_dim,
                         root_weight=False)
        self.lin_skip = None
        for lin in (self.lin_key, self.lin_query, self.lin_value):
            lin.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_edge):
            if lin is not None:
                lin.reset_parameters()


class GraphSelfAttention(nn.Module):
    """Multi-head attention over incoming edges (source j -> target i): PyG ``TransformerConv`` (no root weight,
    heads concatenated) followed by an output projection W_o:

    alpha_ij = softmax_j(q_i . (k_j + e_ij) / sqrt(dh)), out_i = W_o sum_j alpha_ij (v_j + e_ij);
    x [N, d] -> [N, d]; ``edge_dim`` set: edge features [E, edge_dim] are projected and added to keys and values.
    ``bias_spec``: the edges' geometric map (``bias_spec.channels`` wide) follows the ``edge_dim`` batch features in
    ``context.edge_attr``.

    Why PyG's layer: a hand-written MessagePassing layer of the same maths took the same time and peak memory
    (forward + backward on kNN graphs of 300 and 2,000 residues), so there is no reason to keep own code.
    """

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float = 0.0, edge_dim: int | None = None,
                 bias_spec: BiasSpec | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.edge_dim = ((edge_dim or 0) + (bias_spec.channels if bias_spec is not None else 0)) or None
        self.conv = _TransformerConvNoRoot(d_model, d_model // n_heads, n_heads, attn_dropout, self.edge_dim)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, context: GraphContext) -> Tensor:
        if self.edge_dim and context.edge_attr is None:
            raise ValueError("GraphSelfAttention(edge_dim=...) needs edge_attr on the batch")
        ea = context.edge_attr if self.edge_dim else None
        return self.out(self.conv(x, context.edge_index, ea))
