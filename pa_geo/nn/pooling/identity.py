"""``none``: no pooling (the "global pooling only" ablation): the graph passes through unchanged."""
from __future__ import annotations

import torch
from torch import Tensor

from pa_geo.nn.pooling.base import Assignment, GraphPooling, PoolOutput, register_pooling


@register_pooling("none")
class NoPool(GraphPooling):
    """Identity: same nodes, edges, attributes and positions; the assignment is ``arange(N)``. Order-free."""

    order_sensitive = False

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [N, D], ...)``."""
        batch = self._batch(x, batch)
        ident = Assignment(torch.arange(x.size(0), device=x.device), x.size(0))
        return PoolOutput(x, edge_index, edge_attr, batch, pos, ident)
