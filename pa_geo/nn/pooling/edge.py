"""``edge``: edge-contraction pooling (Diehl 2019) via tgp: contract a maximal matching of high-scoring edges."""
from __future__ import annotations

from torch import Tensor

from pa_geo.nn.pooling.base import GraphPooling, PoolOutput, cluster_output, register_pooling


@register_pooling("edge")
class EdgePool(GraphPooling):
    """A linear layer scores every edge from its two end features (softmax over each node's incoming edges,
    + 0.5); edges are contracted greedily by score into pairs, so each scale roughly halves the graph. The pooled
    features are the members' sum times the contracted edge's score. Order-sensitive only through score ties."""

    def __init__(self, in_channels: int, dropout: float = 0.0) -> None:
        super().__init__(in_channels)
        from tgp.poolers import EdgeContractionPooling

        self.pool = EdgeContractionPooling(in_channels, dropout=dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [K, D], ...)`` with N/2 <= K <= N."""
        batch = self._batch(x, batch)
        so = self.pool.select(x=x, edge_index=edge_index, batch=batch)
        x_pooled, _ = self.pool.reduce(x=x, so=so, batch=batch)
        cluster = so.cluster_index.new_empty(so.num_nodes)
        cluster[so.node_index] = so.cluster_index
        return cluster_output(x_pooled, cluster, edge_index, edge_attr, batch, pos)
