"""``graclus``: greedy matching coarsening (Dhillon et al. 2007) via tgp's GraclusSelect over torch-cluster."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import normalized_cut, scatter

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling.base import GraphPooling, PoolOutput, cluster_output
from pa_geo.nn.pooling.registry import register_pooling


@register_pooling("graclus")
class GraclusPool(GraphPooling):
    """Pairs every node with an unmatched neighbour of maximal normalized-cut weight, then mean/max-pools each
    pair (``reduce``). Edge weights are ``exp(-(d / sigma)^2)`` of the member distance, normalized-cut scaled, so
    spatially close residues merge first (uniform weights without ``pos``).

    torch-cluster visits nodes in a random order: in training mode that is a free augmentation; in eval mode every
    graph is clustered on its own under a fixed seed, so predictions are reproducible and a graph pools the same
    alone or inside a batch. The result still depends on node numbering (order-sensitive).
    """

    def __init__(self, in_channels: int, reduce: str = "mean", sigma: float = 4.0, seed: int = 0) -> None:
        super().__init__(in_channels)
        if reduce not in ("mean", "max"):
            raise ConfigError(f"pooling 'graclus': reduce must be 'mean' or 'max', got '{reduce}'")
        from tgp.select import GraclusSelect

        self.reduce, self.sigma, self.seed = reduce, float(sigma), int(seed)
        self.select = GraclusSelect()

    def _weights(self, edge_index: Tensor, pos: Tensor | None, n: int) -> Tensor | None:
        if pos is None or edge_index.numel() == 0:
            return None
        d = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)
        return normalized_cut(edge_index, torch.exp(-(d / self.sigma) ** 2), num_nodes=n)

    def _cluster(self, edge_index: Tensor, weight: Tensor | None, n: int) -> tuple[Tensor, int]:
        if n == 0 or edge_index.numel() == 0:
            return torch.arange(n, device=edge_index.device), n
        so = self.select(edge_index=edge_index, edge_weight=weight, num_nodes=n)
        cluster = so.cluster_index.new_empty(n)
        cluster[so.node_index] = so.cluster_index
        return cluster, so.num_supernodes

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [K, D], ...)`` with N/2 <= K <= N."""
        batch = self._batch(x, batch)
        n = x.size(0)
        weight = self._weights(edge_index, pos, n)
        if self.training:
            cluster, k = self._cluster(edge_index, weight, n)
        else:
            cluster, k = self._cluster_per_graph(edge_index, weight, batch, n)
        x_pooled = scatter(x, cluster, dim=0, dim_size=k, reduce=self.reduce)
        return cluster_output(x_pooled, cluster, edge_index, edge_attr, batch, pos)

    def _cluster_per_graph(self, edge_index: Tensor, weight: Tensor | None, batch: Tensor,
                           n: int) -> tuple[Tensor, int]:
        if n and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("graclus pooling expects the nodes of each graph to be contiguous (a PyG Batch)")
        counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if n else 0)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).tolist()
        edge_graph = batch[edge_index[0]]
        cluster, k = torch.empty(n, dtype=torch.long, device=batch.device), 0
        for g in range(len(ptr) - 1):
            lo, hi = ptr[g], ptr[g + 1]
            sel = edge_graph == g
            w = None if weight is None else weight[sel]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                c, k_g = self._cluster(edge_index[:, sel] - lo, w, hi - lo)
            cluster[lo:hi] = c + k
            k += k_g
        return cluster, k

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, reduce={self.reduce}, sigma={self.sigma}"
