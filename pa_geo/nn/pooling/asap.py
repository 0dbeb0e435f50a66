"""``asap``: adaptive structure-aware pooling (Ranjan et al. 2020) on tgp's ASAPooling modules."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import add_remaining_self_loops, scatter, softmax

from pa_geo.nn.pooling.base import (GraphPooling, PoolOutput, kept_nodes, register_pooling, score_gate,
                                    selection_output)


@register_pooling("asap")
class ASAPool(GraphPooling):
    """Each node first becomes the centre of a cluster over its 1-hop ego network (master-query attention), an
    LEConv scores the clusters and the top ``ratio`` are kept, represented by their centre node (whose position is
    the pooled position) and gated by ``sigmoid(score)``. As in tgp the assignment is hard (kept centres), so
    pooled edges are the edges among kept centres and ``edge_attr`` is carried like for ``topk``.

    The parameters and the ranking are tgp's ``ASAPooling``; the forward is re-stated here (following tgp's) only
    to rank on the raw LEConv score and gate afterwards (see :func:`~pa_geo.nn.pooling.base.kept_nodes`).
    Order-sensitive only through exact score ties.
    """

    def __init__(self, in_channels: int, ratio: float | int = 0.5, dropout: float = 0.0) -> None:
        super().__init__(in_channels)
        from tgp.poolers import ASAPooling

        self.ratio = ratio
        self.pool = ASAPooling(in_channels, ratio=ratio, dropout=dropout, nonlinearity="linear")
        self.gate = score_gate("sigmoid")

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [K, D], ...)`` with K = sum over graphs of ceil(ratio * n_g)."""
        batch = self._batch(x, batch)
        p, n = self.pool, x.size(0)
        loops, _ = add_remaining_self_loops(edge_index, num_nodes=n)
        src, dst = loops
        # Master query per cluster (max over the ego network), attention over its members.
        query = p.lin(scatter(x[src], dst, dim=0, dim_size=n, reduce="max"))[dst]
        att = F.leaky_relu(p.att(torch.cat([query, x[src]], dim=-1)).view(-1), p.negative_slope)
        att = F.dropout(softmax(att, dst, num_nodes=n), p=p.dropout, training=self.training)
        clusters = scatter(x[src] * att.unsqueeze(-1), dst, dim=0, dim_size=n, reduce="sum")
        raw = p.select_scorer(clusters, loops).view(-1)
        kept, score = kept_nodes(p.select(x=raw, batch=batch))
        x_pooled = clusters[kept] * self.gate(score).unsqueeze(-1)
        return selection_output(x_pooled, kept, edge_index, edge_attr, batch, pos)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"
