"""Baseline encoders and the ablations of the full model, one definition each.

Every encoder (:class:`MeanEmbeddingEncoder`, :class:`~pa_geo.nn.encoder.AdapterEncoder`, the structure encoders of
:mod:`pa_geo.nn.structure_encoders`) has the same interface: ``forward(batch) -> EncoderOutput``, ``graph_dim``,
``node_dim`` and ``required_batch_attributes`` (the batch fields it reads, ProteinWorkshop's convention). The full
model is ``AdapterEncoder(ProteinAdapter(levels), MultiScalePredictor(d_model))`` with a task head
(:mod:`pa_geo.nn.heads`); each ablation changes ONE thing, and each is one config of ``configs/ablations/`` that
composes on any task config by name only (the adapter's ``levels`` carry over when its class is swapped; encoders
that replace adapter and predictor sit in the adapter slot with ``predictor: null``):

=================================  =================================================  ===========================
ablation                           constructor form (everything else as in the full    configs/ablations/
                                   model)
=================================  =================================================  ===========================
linear probe                       ``AdapterEncoder(MeanEmbeddingEncoder(levels))``;   linear_probe.yaml
                                   head ``hidden_dim=None`` (node tasks: per-residue
                                   embeddings; protein tasks: their mean)
2-layer MLP probe                  as the linear probe, head ``hidden_dim=<H>``        mlp_probe.yaml
scalar mix of several layers       ``MeanEmbeddingEncoder(levels, mix="scalar_mix")``  scalar_mix.yaml
levels summed, plain transformer   adapter ``SummedLevelsTransformer(levels, d_model,  summed_levels_transformer.yaml
                                   n_blocks, n_heads)``: one stream, same depth /
                                   width / heads / predictor
no intra-level self-attention      ``ProteinAdapter(levels, self_attention=False)``    no_self_attention.yaml
no cross-attention (late fusion)   ``ProteinAdapter(levels, cross_attention=False)``:  no_cross_attention.yaml
                                   separate streams, fused after the last block
per-residue level mixing           ``ProteinAdapter(levels, cross_scope="residue")``   residue_level_mixing.yaml
predictor without the final merge  ``MultiScalePredictor(d_model, merge="last")``      no_final_merge.yaml
global pooling only                ``MultiScalePredictor(d_model, pool="none",         global_pool_only.yaml
                                   num_scales=1)``
GearNet-Edge-style conv            ``GearNetEncoder()`` (one-hot residues)             gearnet.yaml
ESM-GearNet-style serial fusion    ``GearNetEncoder(levels=levels,                     esm_gearnet.yaml
                                   sequence_levels="sequence")``
GVP-GNN / with sequence levels     ``GVPEncoder()`` / ``GVPEncoder(levels=levels,      gvp.yaml / esm_gvp.yaml
                                   sequence_levels="sequence")``
=================================  =================================================  ===========================

With one ESM-1b level the MLP probe is PEER's frozen ESM-1b probe (``configs/fluorescence.yaml`` +
``ablations/mlp_probe.yaml``).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import ProteinAdapter, level_inputs
from pa_geo.nn.outputs import EncoderOutput, OneWidthEncoder


class ScalarMix(nn.Module):
    """ELMo-style mix of K layers: ``gamma * sum_k softmax(w)_k * h_k``.

    dims: width of each input layer. If they differ, every layer is first projected by its own Linear to
    ``out_dim`` (default: the largest width); if they are equal no projection is made and ``out_dim`` = that width.
    forward(list of K tensors [N, dims[k]]) -> [N, out_dim].
    """

    def __init__(self, dims: list[int], out_dim: int | None = None) -> None:
        super().__init__()
        if not dims:
            raise ConfigError("ScalarMix: needs at least one layer")
        same = len(set(dims)) == 1 and (out_dim is None or out_dim == dims[0])
        self.out_dim = dims[0] if same else (out_dim or max(dims))
        self.proj = None if same else nn.ModuleList(nn.Linear(d, self.out_dim) for d in dims)
        self.dims = list(dims)
        self.weights = nn.Parameter(torch.zeros(len(dims)))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: list[Tensor]) -> Tensor:
        if len(layers) != len(self.dims):
            raise ValueError(f"ScalarMix: got {len(layers)} layers, built for {len(self.dims)}")
        if self.proj is not None:
            layers = [p(h) for p, h in zip(self.proj, layers)]
        w = torch.softmax(self.weights, dim=0)
        return self.gamma * torch.einsum("k,knd->nd", w, torch.stack(layers))


class MeanEmbeddingEncoder(OneWidthEncoder):
    """Frozen-embedding probe encoder.

    levels: node field -> dim, e.g. ``{"emb_esm1b_33": 1280}``. node [N, D] = the fields concatenated
    (``mix="concat"``, D = sum of dims, no parameters) or :class:`ScalarMix`-ed (``mix="scalar_mix"``);
    graph [B, D] = mean of node over each graph; batch [N].
    """

    def __init__(self, levels: dict[str, int] | None = None, mix: Literal["concat", "scalar_mix"] = "concat",
                 mix_dim: int | None = None) -> None:
        super().__init__()
        if not levels:
            raise ConfigError("MeanEmbeddingEncoder: levels is empty (give at least one embedding field -> dim; the "
                              "pa-geo CLI derives them from data.embeddings)")
        if mix not in ("concat", "scalar_mix"):
            raise ConfigError(f"MeanEmbeddingEncoder: unknown mix {mix!r} (choose concat or scalar_mix)")
        self.levels = dict(levels)
        self.mix = ScalarMix(list(levels.values()), mix_dim) if mix == "scalar_mix" else None
        self._dim = self.mix.out_dim if self.mix is not None else sum(levels.values())

    @property
    def required_batch_attributes(self) -> list[str]:
        """The level fields and ``batch``."""
        return [*self.levels, "batch"]

    def forward(self, batch: Data | Batch) -> EncoderOutput:
        xs = [x.float() for x in level_inputs(batch, self.levels, "MeanEmbeddingEncoder")]
        node = self.mix(xs) if self.mix is not None else torch.cat(xs, dim=-1)
        index = getattr(batch, "batch", None)
        if index is None:
            index = torch.zeros(node.shape[0], dtype=torch.long, device=node.device)
        graph = global_mean_pool(node, index, size=getattr(batch, "num_graphs", None))
        return EncoderOutput(graph=graph, node=node, batch=index)


class SummedLevelsTransformer(ProteinAdapter):
    """Levels projected to d_model and summed, then a plain transformer (self-attention +
    FFN blocks) on that one stream, with the full adapter's depth, width and heads
    (``ProteinAdapter(cross_attention=False, fusion="sum", fusion_first=True)``), with the adapter's geometric
    attention bias (same switch and options). batch -> [N, d_model]."""

    def __init__(self, levels: dict[str, int] | None = None, d_model: int = 128, n_blocks: int = 2,
                 n_heads: int = 4, attention: Literal["global", "graph"] = "global", dropout: float = 0.1,
                 ffn_mult: int = 2, attn_dropout: float = 0.0, edge_dim: int | None = None,
                 geometric_bias: bool = False, bias_num_rbf: int = 16, bias_max_distance: float = 20.0,
                 bias_seq_sep: bool = True, bias_max_seq_sep: int = 32, bias_channels: int = 4) -> None:
        super().__init__(levels, d_model=d_model, n_blocks=n_blocks, n_heads=n_heads, attention=attention,
                         fusion="sum", cross_attention=False, dropout=dropout, ffn_mult=ffn_mult,
                         fusion_first=True, attn_dropout=attn_dropout, edge_dim=edge_dim,
                         geometric_bias=geometric_bias, bias_num_rbf=bias_num_rbf,
                         bias_max_distance=bias_max_distance, bias_seq_sep=bias_seq_sep,
                         bias_max_seq_sep=bias_max_seq_sep, bias_channels=bias_channels)
