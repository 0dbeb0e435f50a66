"""``voxel``: spatial grid clustering on ``pos`` (PyG ``voxel_grid`` over torch-cluster's ``grid``)."""
from __future__ import annotations

from torch import Tensor
from torch_geometric.nn.pool.consecutive import consecutive_cluster
from torch_geometric.utils import scatter

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling.base import GraphPooling, PoolOutput, cluster_output, register_pooling


@register_pooling("voxel")
class VoxelPool(GraphPooling):
    """Nodes in the same ``size``-Angstrom cube of a grid anchored at each graph's own minimum corner form one
    cluster (so a graph pools the same alone or in a batch, and under translation); features are mean/max pooled
    (``reduce``) and the pooled position is the members' centroid. Membership depends only on ``pos``, so the
    operator is order-free. Not rotation-invariant (a grid has axes). Graphs without geometry (all positions
    equal) collapse to one node. Give growing sizes per scale (e.g. ``size: [6, 12, 24]`` in the predictor's
    ``pool_kwargs``): re-gridding centroids with the same size barely coarsens.
    """

    order_sensitive = False

    def __init__(self, in_channels: int, size: float = 6.0, reduce: str = "mean") -> None:
        super().__init__(in_channels)
        if float(size) <= 0:
            raise ConfigError(f"pooling 'voxel': size must be > 0 Angstrom, got {size}")
        if reduce not in ("mean", "max"):
            raise ConfigError(f"pooling 'voxel': reduce must be 'mean' or 'max', got '{reduce}'")
        self.size, self.reduce = float(size), reduce

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D], pos [N, 3] -> PoolOutput(x [K, D], ...)``, K = occupied voxels."""
        if pos is None:
            raise ConfigError("pooling 'voxel' needs node positions (batch.pos); use another operator")
        from torch_geometric.nn import voxel_grid  # needs torch-cluster

        batch = self._batch(x, batch)
        local = pos - scatter(pos, batch, dim=0, reduce="min")[batch]
        cluster, _ = consecutive_cluster(voxel_grid(local.detach(), size=self.size, batch=batch, start=0.0))
        k = int(cluster.max()) + 1 if cluster.numel() else 0
        x_pooled = scatter(x, cluster, dim=0, dim_size=k, reduce=self.reduce)
        return cluster_output(x_pooled, cluster, edge_index, edge_attr, batch, pos)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, size={self.size}, reduce={self.reduce}"
