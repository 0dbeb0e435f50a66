"""``graclus``: greedy matching coarsening (Dhillon et al. 2007), batched, with no global RNG side effects.

The matching is torch-cluster's CPU ``graclus`` (``csrc/cpu/graclus_cpu.cpp``, what tgp's ``GraclusSelect`` calls):
visit the nodes in a random order; an unmatched node u is paired with the unmatched neighbour v of largest edge
weight (ties: the last such edge in input order; weights >= 0), or stays alone; the cluster is ``min(u, v)``.
That op draws its visiting order from the device's *global* generator and takes no ``torch.Generator``: seeding
it per graph would reseed every device's global RNG after each eval pass, in a Python loop over the graphs.
:func:`greedy_matching` computes the same matching for a whole batch at once from per-node visiting
priorities, in parallel rounds: a node decides as soon as it is the earliest undecided node within two hops (all
that can change its choice or its neighbours' state is then settled), so the result is exactly the sequential one.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import normalized_cut, scatter

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling.base import GraphPooling, PoolOutput, cluster_output, register_pooling


def greedy_matching(edge_index: Tensor, weight: Tensor | None, priority: Tensor, num_nodes: int) -> Tensor:
    """Sequential greedy weighted matching, computed in parallel rounds.

    edge_index [2, E] (u = row 0 chooses among its row-1 neighbours), weight [E] >= 0 or None (all 1),
    priority [N] int64 visiting order (unique among nodes within two hops of each other, e.g. per-graph ranks) ->
    cluster [N] int64, ``min(u, partner(u))`` (``u`` for an unmatched node). Same result as visiting the nodes in
    ascending ``priority`` one at a time. One host read per round (whether any node is left).
    """
    src, dst = edge_index
    keep = src != dst
    src, dst = src[keep], dst[keep]
    w = torch.ones(src.shape, device=src.device) if weight is None else weight[keep]
    nodes = torch.arange(num_nodes, device=src.device)
    never = torch.iinfo(torch.long).max
    partner = torch.full((num_nodes + 1,), -1, dtype=torch.long, device=src.device)  # slot N: writes to drop
    while True:
        open_ = partner[:num_nodes] < 0
        if not bool(open_.any()):
            break
        # Only edges between open nodes matter from now on (a matched node's state never changes again).
        live = open_[src] & open_[dst]
        src, dst, w = src[live], dst[live], w[live]  # order kept: ties still go to the last edge in input order
        # earliest open priority within two hops (edges read both ways: conservative for directed graphs)
        reach = torch.where(open_, priority, never)
        for _ in range(2):
            reach = reach.scatter_reduce(0, dst, reach[src], "amin").scatter_reduce(0, src, reach[dst], "amin")
        ready = open_ & (reach == priority)
        cand = ready[src] & (w >= 0)
        wc = torch.where(cand, w, -torch.inf)
        best_w = torch.full((num_nodes,), -torch.inf, device=w.device, dtype=w.dtype).scatter_reduce(
            0, src, wc, "amax")
        best = cand & (wc == best_w[src])
        pick = torch.full((num_nodes,), -1, device=src.device, dtype=torch.long).scatter_reduce(
            0, src, torch.where(best, torch.arange(src.numel(), device=src.device), -1), "amax")
        matched = ready & (pick >= 0)
        mate = torch.where(matched, torch.cat([dst, nodes[:1]])[pick], nodes)  # pick -1 reads a dummy entry
        partner[:num_nodes] = torch.where(ready, mate, partner[:num_nodes])
        partner.scatter_(0, torch.where(matched, mate, num_nodes), nodes)  # v's partner is u (distinct v's)
    return torch.minimum(nodes, partner[:num_nodes])


@register_pooling("graclus")
class GraclusPool(GraphPooling):
    """Pairs every node with an unmatched neighbour of maximal normalized-cut weight, then mean/max-pools each
    pair (``reduce``). Edge weights are ``exp(-(d / sigma)^2)`` of the member distance, normalized-cut scaled, so
    spatially close residues merge first (uniform weights without ``pos``: ties go to the last edge).

    Training: torch-cluster's ``graclus`` on the whole batch in one call, visiting order from the device's global
    RNG (a free augmentation; the C++ loop is faster than the round-based matching). Eval:
    :func:`greedy_matching` on the whole batch, each graph visited in the order ``torch.randperm(n_g)`` of a private
    CPU ``torch.Generator`` seeded with ``seed`` (the order ``torch.manual_seed(seed)`` would give), so predictions
    are reproducible, equal on CPU and CUDA, a graph pools the same alone or in a batch, and no global RNG is
    touched. Order-sensitive (node numbering).
    """

    def __init__(self, in_channels: int, reduce: str = "mean", sigma: float = 4.0, seed: int = 0) -> None:
        super().__init__(in_channels)
        if reduce not in ("mean", "max"):
            raise ConfigError(f"pooling 'graclus': reduce must be 'mean' or 'max', got '{reduce}'")
        self.reduce, self.sigma, self.seed = reduce, float(sigma), int(seed)
        self._ranks: dict[int, Tensor] = {}  # graph length -> eval visiting rank of each node (CPU)

    def _weights(self, edge_index: Tensor, pos: Tensor | None, n: int) -> Tensor | None:
        if pos is None or edge_index.numel() == 0:
            return None
        d = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)
        return normalized_cut(edge_index, torch.exp(-(d / self.sigma) ** 2), num_nodes=n)

    def _eval_ranks(self, length: int) -> Tensor:
        if length not in self._ranks:
            order = torch.randperm(length, generator=torch.Generator().manual_seed(self.seed))
            self._ranks[length] = torch.empty_like(order).scatter_(0, order, torch.arange(length))
        return self._ranks[length]

    def eval_priority(self, batch: Tensor, n: int) -> Tensor:
        """Eval visiting rank of every node ``[N]``: per-graph ranks from the seeded private generator."""
        if n and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("graclus pooling expects the nodes of each graph to be contiguous (a PyG Batch)")
        counts = torch.bincount(batch).tolist() if n else []  # pooled scales carry no ptr: one host read
        ranks = [self._eval_ranks(c) for c in counts if c] or [torch.zeros(0, dtype=torch.long)]
        return torch.cat(ranks).to(batch.device)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, pos: Tensor | None = None) -> PoolOutput:
        """``x [N, D] -> PoolOutput(x [K, D], ...)`` with N/2 <= K <= N."""
        batch = self._batch(x, batch)
        n = x.size(0)
        weight = self._weights(edge_index, pos, n)
        if self.training:
            from torch_cluster import graclus_cluster

            matched = graclus_cluster(edge_index[0], edge_index[1], weight, n) if n else batch.new_zeros(0)
        else:
            matched = greedy_matching(edge_index, weight, self.eval_priority(batch, n), n)
        ids, cluster = torch.unique(matched, sorted=True, return_inverse=True)
        k = ids.numel()
        x_pooled = scatter(x, cluster, dim=0, dim_size=k, reduce=self.reduce)
        return cluster_output(x_pooled, cluster, edge_index, edge_attr, batch, pos)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, reduce={self.reduce}, sigma={self.sigma}"
