"""Baseline encoders: same interface as :class:`~pa_geo.nn.encoder.AdapterEncoder` (``forward(batch) ->
EncoderOutput``, ``graph_dim``, ``node_dim``), chosen by config.

* :class:`MeanEmbeddingEncoder` - no trainable encoder: per-node frozen embeddings (concatenated, or mixed by a
  :class:`ScalarMix`), mean-pooled per graph. With one ESM-1b level and a linear ``GraphHead(hidden_dim=None)`` this
  is PEER's frozen ESM-1b linear probe; ``GraphHead(hidden_dim=...)`` gives the 2-layer MLP probe.
* "adapter without cross-attention": :class:`AdapterWithoutCrossAttention` = ``ProteinAdapter(
  cross_attention=False, fusion="sum", fusion_first=True)`` - levels projected and summed, then self-attention.
* "predictor with global pooling only": ``MultiScalePredictor(in_dim, pool="none", num_scales=1)``
  (:mod:`pa_geo.nn.predictor`) - graph convolutions then one global readout, no hierarchical pooling.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import ProteinAdapter, level_inputs
from pa_geo.nn.outputs import EncoderOutput


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


class MeanEmbeddingEncoder(nn.Module):
    """Frozen-embedding probe encoder.

    levels: node field -> dim, e.g. ``{"emb_esm1b_33": 1280}``. node [N, D] = the fields concatenated
    (``mix="concat"``, D = sum of dims, no parameters) or :class:`ScalarMix`-ed (``mix="scalar_mix"``);
    graph [B, D] = mean of node over each graph; batch [N].
    """

    def __init__(self, levels: dict[str, int], mix: Literal["concat", "scalar_mix"] = "concat",
                 mix_dim: int | None = None) -> None:
        super().__init__()
        if not levels:
            raise ConfigError("MeanEmbeddingEncoder: levels is empty (give at least one embedding field -> dim)")
        if mix not in ("concat", "scalar_mix"):
            raise ConfigError(f"MeanEmbeddingEncoder: unknown mix {mix!r} (choose concat or scalar_mix)")
        self.levels = dict(levels)
        self.mix = ScalarMix(list(levels.values()), mix_dim) if mix == "scalar_mix" else None
        self._dim = self.mix.out_dim if self.mix is not None else sum(levels.values())

    @property
    def graph_dim(self) -> int:
        return self._dim

    @property
    def node_dim(self) -> int:
        return self._dim

    def forward(self, batch: Data | Batch) -> EncoderOutput:
        xs = [x.float() for x in level_inputs(batch, self.levels, "MeanEmbeddingEncoder")]
        node = self.mix(xs) if self.mix is not None else torch.cat(xs, dim=-1)
        index = getattr(batch, "batch", None)
        if index is None:
            index = torch.zeros(node.shape[0], dtype=torch.long, device=node.device)
        graph = global_mean_pool(node, index, size=getattr(batch, "num_graphs", None))
        return EncoderOutput(graph=graph, node=node, batch=index)


class AdapterWithoutCrossAttention(ProteinAdapter):
    """The ablation adapter: levels projected to d_model and summed, then self-attention blocks on one stream
    (``ProteinAdapter(cross_attention=False, fusion="sum", fusion_first=True)``). x -> [N, d_model]."""

    def __init__(self, levels: dict[str, int], d_model: int = 128, n_blocks: int = 2, n_heads: int = 4,
                 attention: Literal["global", "graph"] = "global", dropout: float = 0.1, ffn_mult: int = 2,
                 attn_dropout: float = 0.0, edge_dim: int | None = None) -> None:
        super().__init__(levels, d_model=d_model, n_blocks=n_blocks, n_heads=n_heads, attention=attention,
                         fusion="sum", cross_attention=False, dropout=dropout, ffn_mult=ffn_mult,
                         fusion_first=True, attn_dropout=attn_dropout, edge_dim=edge_dim)
