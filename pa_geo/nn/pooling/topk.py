"""``topk``: keep the ceil(ratio * n) best-scoring nodes of each graph (Graph U-Nets), via tgp's TopkPooling."""
from __future__ import annotations

from typing import Callable

from torch import Tensor

from pa_geo.nn.pooling.base import (GraphPooling, PoolOutput, kept_nodes, register_pooling, score_gate,
                                    selection_output)


@register_pooling("topk")
class TopKPool(GraphPooling):
    """Score ``x @ w / |w|``; the kept features are gated by ``nonlinearity(score)`` (so the scorer gets
    gradients). Order-sensitive only through exact score ties (PyG's top-k sort is not stable)."""

    def __init__(self, in_channels: int, ratio: float | int = 0.5, nonlinearity: str | Callable = "tanh") -> None:
        super().__init__(in_channels)
        from tgp.poolers import TopkPooling

        self.ratio = ratio
        self.pool = TopkPooling(in_channels, ratio=ratio, nonlinearity="linear")  # rank on raw scores
        self.gate = score_gate(nonlinearity)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [K, D], ...)`` with K = sum over graphs of ceil(ratio * n_g)."""
        batch = self._batch(x, batch)
        kept, score = kept_nodes(self.pool.select(x=x, batch=batch))
        x_pooled = x[kept] * self.gate(score).unsqueeze(-1)
        return selection_output(x_pooled, kept, edge_index, edge_attr, batch, pos)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"
