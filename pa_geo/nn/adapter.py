"""The multi-level ProteinAdapter: fuses several frozen per-residue representations (e.g. ESM-1b sequence and
ESM-IF1 structure embeddings) into one trainable node representation.

Per level: Linear(D_level -> d_model) + LayerNorm. Then ``n_blocks`` pre-norm residual blocks, each
  1. intra-level self-attention (own weights per level, ``self_attention=True``) inside each graph: ``"global"`` =
     all residues of a protein, ``"graph"`` = along the graph's edges plus self loops (atom graphs, long chains);
  2. inter-level cross-attention (``cross_attention=True``, >= 2 levels): ``cross_scope="nodes"`` (default) - each
     level's nodes attend over the nodes of the other levels of the same protein (global mode: all of them; graph
     mode: the node's graph neighbours plus itself; K > 2: the concatenated nodes of all other levels), see
     :class:`~pa_geo.nn.cross_attention.NodeSetCrossAttention`; ``cross_scope="residue"`` - the per-residue level
     mixing (each residue sees the other levels' tokens of the same residue only; with two levels a fixed
     ``out(V(x_other))``), see :class:`~pa_geo.nn.cross_attention.ResidueCrossAttention`. The batch's edge
     features enter through the graph-mode self-attention only;
  3. a per-level feed-forward network (d_model -> ffn_mult*d_model -> d_model, GELU).
With ``geometric_bias`` (off by default) every self- and cross-attention layer over node sets adds a learned per-head
score term from the pair's CA distance (RBF; none where a node has no position) and, with ``bias_seq_sep``, from
its sequence separation within a chain (:mod:`pa_geo.nn.geometric_bias`: a K-channel map of the pair shared by
the layers, mixed to one scalar per head by each layer's own Linear): in global mode inside the length buckets and
query chunks, in graph mode through the edges (``TransformerConv`` edge features, per-edge score bias).
Distances only, so the output is invariant to rotations and translations of ``pos``. ``geometric_bias=False``
builds exactly the adapter without it (same parameters, same output).
A final LayerNorm per level, then fusion: ``concat`` (+ Linear K*d -> d), ``sum``, or ``gated`` (per-node softmax
gates over levels from a learned score per level). ``fusion_first=True`` fuses the projected levels *before* the
blocks, which then run on one stream (with ``fusion="sum"``: :class:`~pa_geo.nn.baselines.SummedLevelsTransformer`).

Everything the attention layers need that depends only on the batch layout (length buckets, gather indices,
padding masks, self-looped edges) is built once per forward by :meth:`ProteinAdapter.context` and shared by every
level and block: the blocks themselves never read a tensor value on the host (no CUDA synchronisation).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError
from pa_geo.nn.attention import (DEFAULT_CHUNK_ELEMENTS, GlobalSelfAttention, GraphSelfAttention,
                                 attention_context)
from pa_geo.nn.cross_attention import NodeSetCrossAttention, ResidueCrossAttention
from pa_geo.nn.geometric_bias import BiasSpec, PairMap
from pa_geo.nn.profiling import stage

Attention = Literal["global", "graph"]
Fusion = Literal["concat", "sum", "gated"]
CrossScope = Literal["nodes", "residue"]


class FeedForward(nn.Sequential):
    """x [N, d] -> [N, d]: Linear(d, m*d), GELU, Dropout, Linear(m*d, d)."""

    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, mult * d_model), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mult * d_model, d_model))


class LevelFusion(nn.Module):
    """K level tensors [N, d] -> [N, d] by ``concat`` + projection, ``sum`` or per-node ``gated`` softmax weights."""

    def __init__(self, n_levels: int, d_model: int, mode: Fusion) -> None:
        super().__init__()
        if mode not in ("concat", "sum", "gated"):
            raise ConfigError(f"ProteinAdapter: unknown fusion {mode!r} (choose concat, sum or gated)")
        self.mode = mode
        self.proj = nn.Linear(n_levels * d_model, d_model) if mode == "concat" and n_levels > 1 else None
        self.score = nn.ModuleList(nn.Linear(d_model, 1) for _ in range(n_levels)) \
            if mode == "gated" and n_levels > 1 else None

    def forward(self, xs: list[Tensor]) -> Tensor:
        if len(xs) == 1:
            return xs[0]
        if self.mode == "concat":
            return self.proj(torch.cat(xs, dim=-1))
        if self.mode == "sum":
            return torch.stack(xs).sum(0)
        gates = torch.softmax(torch.cat([s(x) for s, x in zip(self.score, xs)], dim=-1), dim=-1)  # [N, K]
        return torch.einsum("nk,knd->nd", gates, torch.stack(xs))


class AdapterBlock(nn.Module):
    """One pre-norm block over K level streams: self-attention per level (optional), cross-level attention
    (optional, K >= 2), FFN per level. forward(xs: K x [N, d], context) -> K x [N, d]."""

    def __init__(self, n_levels: int, d_model: int, n_heads: int, attention: Attention, cross_attention: bool,
                 dropout: float, attn_dropout: float, ffn_mult: int, chunk_elements: int | None,
                 use_checkpoint: bool, edge_dim: int | None, self_attention: bool = True,
                 cross_scope: CrossScope = "nodes", bias_spec: BiasSpec | None = None,
                 cross_bias: bool = True) -> None:
        super().__init__()
        def self_attn() -> nn.Module:
            if attention == "global":
                return GlobalSelfAttention(d_model, n_heads, attn_dropout, chunk_elements, use_checkpoint, bias_spec)
            return GraphSelfAttention(d_model, n_heads, attn_dropout, edge_dim, bias_spec)
        self.attn_norm = self.attn = None
        if self_attention:
            self.attn_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_levels))
            self.attn = nn.ModuleList(self_attn() for _ in range(n_levels))
        self.cross_norm = self.cross = None
        if cross_attention and n_levels > 1:
            self.cross_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_levels))
            self.cross = NodeSetCrossAttention(n_levels, d_model, n_heads, attn_dropout, chunk_elements,
                                               use_checkpoint, bias_spec if cross_bias else None) \
                if cross_scope == "nodes" else \
                ResidueCrossAttention(n_levels, d_model, n_heads, attn_dropout)
        self.ffn_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_levels))
        self.ffn = nn.ModuleList(FeedForward(d_model, ffn_mult, dropout) for _ in range(n_levels))
        self.drop = nn.Dropout(dropout)

    def forward(self, xs: list[Tensor], context: object) -> list[Tensor]:
        if self.attn is not None:
            with stage("adapter.self_attention"):
                xs = [x + self.drop(att(norm(x), context)) for x, att, norm in zip(xs, self.attn, self.attn_norm)]
        if self.cross is not None:
            with stage("adapter.cross_attention"):
                cross = self.cross([norm(x) for x, norm in zip(xs, self.cross_norm)], context)
                xs = [x + self.drop(c) for x, c in zip(xs, cross)]
        with stage("adapter.ffn"):
            return [x + self.drop(ffn(norm(x))) for x, ffn, norm in zip(xs, self.ffn, self.ffn_norm)]


def level_inputs(batch: Data | Batch, levels: dict[str, int], owner: str) -> list[Tensor]:
    """The level node fields of ``batch``, each ``[N, D_level]`` in ``levels`` order; a missing field, a wrong width
    or differing node counts raise a one-line :class:`ConfigError` naming ``owner`` and the field."""
    xs = []
    for name, dim in levels.items():
        x = batch[name] if name in batch else None
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != dim:
            got = "missing" if x is None else f"shape {tuple(getattr(x, 'shape', ()))}"
            raise ConfigError(f"{owner}: batch node field {name!r} is {got}, expected [N, {dim}]")
        xs.append(x)
    if len({x.shape[0] for x in xs}) > 1:
        raise ConfigError(f"{owner}: level fields have different node counts "
                          f"{ {n: x.shape[0] for n, x in zip(levels, xs)} }")
    return xs


class ProteinAdapter(nn.Module):
    """Trainable multi-level adapter over frozen node embeddings.

    levels: node field -> embedding dim, e.g. ``{"emb_esm1b_33": 1280, "emb_esm_if1_3": 512}`` (field order = level
    order; the pa-geo CLI derives them from ``data.embeddings``). ``forward(batch)`` reads ``batch[field]`` [N, D_level], ``batch.ptr`` [B+1] (or ``batch.batch`` [N])
    and, in graph mode, ``batch.edge_index`` [2, E] (and ``batch.edge_attr`` [E, edge_dim] if ``edge_dim``); returns
    [N, d_model]. Ablation switches: ``self_attention=False`` drops the intra-level self-attention,
    ``cross_attention=False`` keeps the levels in separate streams until the final fusion (late fusion),
    ``cross_scope="residue"`` replaces cross-attention over node sets by per-residue level mixing.
    Global mode: ``attn_chunk_elements`` caps the attention scores one SDPA call holds (None = no cap) and
    ``checkpoint_attention`` recomputes chunks in backward so long proteins never keep more than one chunk's scores.

    Geometric bias (module docstring; reads ``batch.pos`` [N, 3] and, when present, ``pos_mask`` [N] and
    ``chain_index`` [N]): ``geometric_bias`` switches it on; ``bias_num_rbf`` Gaussian RBFs of the distance on
    [0, ``bias_max_distance``] A; ``bias_seq_sep`` adds the sequence-separation term, offsets clipped to
    +-``bias_max_seq_sep`` (chains from ``chain_index``; a graph without it, e.g. an atom graph, is one chain);
    both go through a map of ``bias_channels`` channels shared by the layers (``pair_map``), which every layer
    mixes to its heads with its own Linear. ``bias_cross_attention=False`` keeps the bias in the self-attention
    only (on a CPU a biased layer costs about twice an unbiased one: the scores are written out).
    """

    def __init__(self, levels: dict[str, int] | None = None, d_model: int = 128, n_blocks: int = 2, n_heads: int = 4,
                 attention: Attention = "global", fusion: Fusion = "concat", cross_attention: bool = True,
                 dropout: float = 0.1, ffn_mult: int = 2, fusion_first: bool = False, attn_dropout: float = 0.0,
                 attn_chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, checkpoint_attention: bool = True,
                 edge_dim: int | None = None, self_attention: bool = True, cross_scope: CrossScope = "nodes",
                 geometric_bias: bool = False, bias_num_rbf: int = 16, bias_max_distance: float = 20.0,
                 bias_seq_sep: bool = True, bias_max_seq_sep: int = 32, bias_channels: int = 4,
                 bias_cross_attention: bool = True) -> None:
        super().__init__()
        if not levels:
            raise ConfigError("ProteinAdapter: levels is empty (give at least one embedding field -> dim; the pa-geo "
                              "CLI derives them from data.embeddings)")
        bad = [name for name in levels if not name or "." in name]
        if bad:
            raise ConfigError(f"ProteinAdapter: invalid level field name(s) {bad} (no '.' allowed)")
        if attention not in ("global", "graph"):
            raise ConfigError(f"ProteinAdapter: unknown attention {attention!r} (choose global or graph)")
        if cross_scope not in ("nodes", "residue"):
            raise ConfigError(f"ProteinAdapter: unknown cross_scope {cross_scope!r} (choose nodes or residue)")
        if d_model % n_heads:
            raise ConfigError(f"ProteinAdapter: d_model={d_model} is not divisible by n_heads={n_heads}")
        if fusion_first and cross_attention and len(levels) > 1:
            raise ConfigError("ProteinAdapter: fusion_first=True fuses levels before the blocks; "
                              "set cross_attention=False")
        if geometric_bias and (min(bias_num_rbf, bias_max_seq_sep, bias_channels) < 1 or not bias_max_distance > 0):
            raise ConfigError(f"ProteinAdapter: bias_num_rbf ({bias_num_rbf}), bias_max_seq_sep ({bias_max_seq_sep}) "
                              f"and bias_channels ({bias_channels}) must be >= 1 and bias_max_distance "
                              f"({bias_max_distance}) > 0")
        self.bias_spec = BiasSpec(int(bias_num_rbf), float(bias_max_distance), bool(bias_seq_sep),
                                  int(bias_max_seq_sep), int(bias_channels)) if geometric_bias else None
        self.levels = dict(levels)
        self.d_model, self.n_heads, self.attention = d_model, n_heads, attention
        self.fusion_first, self.edge_dim = fusion_first, edge_dim
        self.chunk_elements = attn_chunk_elements
        self.project = nn.ModuleDict({name: nn.Sequential(nn.Linear(dim, d_model), nn.LayerNorm(d_model))
                                      for name, dim in levels.items()})
        n_streams = 1 if fusion_first else len(levels)
        # Graph-mode cross-attention over K - 1 > 1 other levels needs the edges repeated per level.
        self._groups = n_streams - 1 if cross_attention and cross_scope == "nodes" and n_streams > 2 else 1
        self.early_fusion = LevelFusion(len(levels), d_model, fusion) if fusion_first else None
        self.blocks = nn.ModuleList(
            AdapterBlock(n_streams, d_model, n_heads, attention, cross_attention, dropout, attn_dropout, ffn_mult,
                         attn_chunk_elements, checkpoint_attention, edge_dim, self_attention, cross_scope,
                         self.bias_spec, bias_cross_attention)
            for _ in range(n_blocks))
        self.final_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_streams))
        self.fusion = None if fusion_first else LevelFusion(len(levels), d_model, fusion)
        self.pair_map = PairMap(self.bias_spec) if self.bias_spec is not None else None

    @property
    def out_dim(self) -> int:
        """Width of the fused node features (= d_model)."""
        return self.d_model

    @property
    def required_batch_attributes(self) -> list[str]:
        """Batch fields the forward reads: the level fields, ``batch``, ``pos`` with the geometric bias (which also
        reads ``pos_mask`` and ``chain_index`` where the graph has them: residue graphs do, atom graphs do not) and,
        in graph mode, ``edge_index`` (+ ``edge_attr`` with ``edge_dim``)."""
        graph = ["edge_index"] + (["edge_attr"] if self.edge_dim else []) if self.attention == "graph" else []
        return [*self.levels, "batch", *(["pos"] if self.bias_spec is not None else []), *graph]

    def _inputs(self, batch: Data | Batch) -> list[Tensor]:
        return level_inputs(batch, self.levels, "ProteinAdapter")

    def context(self, batch: Data | Batch, num_nodes: int, device: torch.device) -> object:
        """The attention context of ``batch``, built once per forward (the only host reads of the adapter)."""
        if self.attention == "graph" and getattr(batch, "edge_index", None) is None:
            raise ConfigError("ProteinAdapter(attention='graph'): the batch has no edge_index")
        if self.bias_spec is not None and getattr(batch, "pos", None) is None:
            raise ConfigError("ProteinAdapter(geometric_bias=True): the batch has no pos (node positions); "
                              "set geometric_bias: false for graphs without coordinates")
        return attention_context(batch, num_nodes, self.attention, self.n_heads, self.chunk_elements,
                                 self._groups, device, self.pair_map, edge_attr=bool(self.edge_dim))

    def forward_levels(self, batch: Data | Batch) -> dict[str, Tensor]:
        """Per-level node features after the blocks and final norm, before fusion: {field: [N, d_model]}
        (one entry ``"fused"`` when ``fusion_first``)."""
        raw = self._inputs(batch)
        weight = next(self.parameters())
        xs = [proj(x.to(weight.dtype)) for proj, x in zip(self.project.values(), raw)]
        if self.early_fusion is not None:
            xs = [self.early_fusion(xs)]
        with stage("adapter.context"):
            context = self.context(batch, raw[0].shape[0], raw[0].device)
        for block in self.blocks:
            xs = block(xs, context)
        xs = [norm(x) for norm, x in zip(self.final_norm, xs)]
        names = ["fused"] if self.fusion_first else list(self.levels)
        return dict(zip(names, xs))

    def forward(self, batch: Data | Batch) -> Tensor:
        """Fused node features [N, d_model]."""
        xs = list(self.forward_levels(batch).values())
        return xs[0] if self.fusion is None else self.fusion(xs)
