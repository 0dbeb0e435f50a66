"""The pooling contract: :class:`GraphPooling` -> :class:`PoolOutput` with an :class:`Assignment` to lift back, and
the operators by name (:data:`POOLINGS`, ``get_pooling(name, in_channels, **kwargs)``).

Shaped like PyG's / tgp's Select-Reduce-Connect split: each operator *selects* (which pooled node every input node
belongs to), *reduces* (pooled features, and the mean position of the members or the kept node's position) and
*connects* (edges between pooled nodes, with their mean edge attributes). Every assignment here is hard: each input
node maps to exactly one pooled node, so lifting is a gather, and lifts compose across scales by indexing.

Two families:

* **selection** (``topk``, ``sag``, ``asap``): a subset of nodes is kept. Pooled edges are the edges among kept
  nodes; a dropped node is lifted from its spatially nearest kept node of the same graph (nearest by sequence/node
  index when the graph has no geometry, i.e. all positions equal, as for sequence-only proteins).
* **clustering** (``edge``, ``graclus``, ``voxel``, ``none``): every node joins one cluster; pooled edges join
  clusters that had an edge between members (self loops dropped), pooled position is the members' centroid.

Ablations swap the name in a config and keep the same ``pool_kwargs``: a keyword that another registered operator
accepts (e.g. ``ratio`` given to ``graclus``) is dropped with a log line; a keyword no operator accepts (a typo)
is a :class:`~pa_geo.errors.ConfigError`.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch_geometric.utils import coalesce, scatter

from pa_geo.errors import ConfigError
from pa_geo.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Assignment:
    """Hard map from the N_in input nodes of a pooling step to its K pooled nodes.

    cluster       [N_in] int64  pooled node (0..K-1) every input node is lifted from
    num_clusters  K
    kept          [K] int64 | None  selection pools: the input node each pooled node was kept from
    """

    cluster: Tensor
    num_clusters: int
    kept: Tensor | None = None

    def lift(self, x_pooled: Tensor) -> Tensor:
        """Copy pooled features back to the input nodes: ``x_pooled [K, D] -> [N_in, D]``."""
        if x_pooled.size(0) != self.num_clusters:
            raise ValueError(f"lift expects {self.num_clusters} pooled rows, got {x_pooled.size(0)}")
        return x_pooled[self.cluster]


@dataclass
class PoolOutput:
    """A pooled graph.

    x           [K, D]          pooled node features
    edge_index  [2, E']         edges between pooled nodes (no self loops, coalesced)
    edge_attr   [E', F] | None  mean attribute of the input edges each pooled edge stands for
    batch       [K]             graph index of every pooled node
    pos         [K, 3] | None   centroid of the members (clustering) or the kept node's position (selection)
    assignment  Assignment      input node -> pooled node, for :meth:`lift`
    """

    x: Tensor
    edge_index: Tensor
    edge_attr: Tensor | None
    batch: Tensor
    pos: Tensor | None
    assignment: Assignment

    def lift(self, x_pooled: Tensor) -> Tensor:
        """``x_pooled [K, D] -> [N_in, D]`` through :attr:`assignment`."""
        return self.assignment.lift(x_pooled)


class GraphPooling(nn.Module):
    """Base class of every pooling operator: ``forward(x, edge_index, edge_attr, batch, pos) -> PoolOutput``.

    Subclasses are built as ``cls(in_channels, **kwargs)`` by :func:`pa_geo.nn.pooling.get_pooling`.
    ``order_sensitive`` documents whether the pooled graph can depend on node numbering (ties broken by index,
    greedy matchings); order-free operators give the same pooled multiset whatever the node order.
    """

    name: ClassVar[str] = ""
    order_sensitive: ClassVar[bool] = True

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        if int(in_channels) <= 0:
            raise ConfigError(f"pooling '{self.name}': in_channels must be positive, got {in_channels}")
        self.in_channels = int(in_channels)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        pos: Tensor | None = None,
    ) -> PoolOutput:
        """Pool ``x [N, D]`` on ``edge_index [2, E]`` (``edge_attr [E, F]``, ``batch [N]``, ``pos [N, 3]``)."""
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> PoolOutput:
        # tgp builds sparse assignment matrices; torch checks their invariants only when asked, and warns when the
        # choice is left implicit: pooled assignments are valid by construction, so say "off"
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            return super().__call__(*args, **kwargs)

    @staticmethod
    def _batch(x: Tensor, batch: Tensor | None) -> Tensor:
        return batch if batch is not None else x.new_zeros(x.size(0), dtype=torch.long)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"


def coarsen_edges(
    edge_index: Tensor, edge_attr: Tensor | None, mapping: Tensor, num_clusters: int
) -> tuple[Tensor, Tensor | None]:
    """Connect pooled nodes: map both ends of every edge through ``mapping [N]`` (-1 = node dropped).

    Returns ``edge_index [2, E']`` without self loops or duplicates, and ``edge_attr [E', F]`` = mean over the
    input edges merged into each pooled edge (None when ``edge_attr`` is None).
    """
    src, dst = mapping[edge_index[0]], mapping[edge_index[1]]
    keep = (src >= 0) & (dst >= 0) & (src != dst)
    pooled = torch.stack([src[keep], dst[keep]])
    if edge_attr is None:
        return coalesce(pooled, num_nodes=num_clusters), None
    return coalesce(pooled, edge_attr[keep], num_nodes=num_clusters, reduce="mean")


def cluster_output(
    x_pooled: Tensor,
    cluster: Tensor,
    edge_index: Tensor,
    edge_attr: Tensor | None,
    batch: Tensor,
    pos: Tensor | None,
) -> PoolOutput:
    """Assemble the :class:`PoolOutput` of a clustering: ``cluster [N]`` in 0..K-1, ``x_pooled [K, D]``."""
    k = x_pooled.size(0)
    batch_pooled = batch.new_zeros(k).scatter_(0, cluster, batch)
    pos_pooled = None if pos is None else scatter(pos, cluster, dim=0, dim_size=k, reduce="mean")
    ei, ea = coarsen_edges(edge_index, edge_attr, cluster, k)
    return PoolOutput(x_pooled, ei, ea, batch_pooled, pos_pooled, Assignment(cluster, k))


def selection_output(
    x_pooled: Tensor,
    kept: Tensor,
    edge_index: Tensor,
    edge_attr: Tensor | None,
    batch: Tensor,
    pos: Tensor | None,
) -> PoolOutput:
    """Assemble the :class:`PoolOutput` of a node selection: ``kept [K]`` = input node of pooled node k."""
    n, k = batch.size(0), kept.size(0)
    mapping = kept.new_full((n,), -1)
    mapping[kept] = torch.arange(k, device=kept.device)
    batch_pooled = batch[kept]
    pos_pooled = None if pos is None else pos[kept]
    ei, ea = coarsen_edges(edge_index, edge_attr, mapping, k)
    cluster = nearest_kept(kept, batch, pos)
    return PoolOutput(x_pooled, ei, ea, batch_pooled, pos_pooled, Assignment(cluster, k, kept))


def nearest_kept(kept: Tensor, batch: Tensor, pos: Tensor | None) -> Tensor:
    """For every node ``[N]``, the pooled index of the nearest kept node of its own graph.

    Nearest in space (``pos [N, 3]``); in graphs without geometry (``pos`` None, or all positions of the graph
    equal) nearest by node index, which is sequence order for residue graphs. Kept nodes map to themselves.
    Every graph must keep at least one node (top-k keeps ``ceil(ratio * n) >= 1``).
    """
    n, k = batch.size(0), kept.size(0)
    order = torch.argsort(kept)
    cluster = _nearest_by_index(kept[order], batch, n)
    cluster = order[cluster]
    if pos is not None and n > 0:
        from torch_geometric.nn import knn  # needs torch-cluster

        spread = scatter(pos, batch, dim=0, reduce="max") - scatter(pos, batch, dim=0, reduce="min")
        has_geometry = (spread.abs().amax(dim=-1) > 0)[batch]
        if bool(has_geometry.any()):
            y_idx, x_idx = knn(pos[kept], pos, k=1, batch_x=batch[kept], batch_y=batch)
            spatial = cluster.clone()
            spatial[y_idx] = x_idx
            cluster = torch.where(has_geometry, spatial, cluster)
    cluster[kept] = torch.arange(k, device=kept.device)
    return cluster


def _nearest_by_index(kept_sorted: Tensor, batch: Tensor, n: int) -> Tensor:
    """Position in ``kept_sorted [K]`` of the same-graph kept node with the closest index, for every node ``[N]``."""
    nodes = torch.arange(n, device=batch.device)
    right = torch.searchsorted(kept_sorted, nodes).clamp(max=kept_sorted.numel() - 1)
    left = (right - 1).clamp(min=0)
    d_left = (nodes - kept_sorted[left]).abs()
    d_right = (kept_sorted[right] - nodes).abs()
    # A neighbour from another graph is never a candidate: push its distance past any real one.
    d_left = torch.where(batch[kept_sorted[left]] == batch, d_left, d_left + 2 * n + 1)
    d_right = torch.where(batch[kept_sorted[right]] == batch, d_right, d_right + 2 * n + 1)
    return torch.where(d_left <= d_right, left, right)


def score_gate(nonlinearity: str | Callable) -> Callable[[Tensor], Tensor]:
    """The gate applied to the scores of kept nodes (``tanh``, ``sigmoid``, ... or a callable)."""
    from torch_geometric.nn.resolver import activation_resolver

    return nonlinearity if callable(nonlinearity) else activation_resolver(nonlinearity)


def kept_nodes(so: Any) -> tuple[Tensor, Tensor]:
    """From a tgp top-k ``SelectOutput``: ``kept [K]`` (input node of pooled node k) and its score ``[K]``.

    Our selectors rank on the *raw* score (tgp ``TopkSelect`` with a linear activation) and the caller gates the
    kept features with the squashed score: a saturated tanh / sigmoid (large scores, e.g. sums over ~20
    neighbours) makes many scores exactly equal, and PyG's unstable sort then picks among the ties differently
    alone and in a batch (and the saturated gate has no gradient). The raw ranking is the same ordering.
    """
    kept = so.node_index.new_empty(so.num_supernodes)
    kept[so.cluster_index] = so.node_index
    score = so.weight.new_empty(so.num_supernodes)
    score[so.cluster_index] = so.weight
    return kept, score


POOLINGS: Registry[type[GraphPooling]] = Registry("pooling operator")
P = TypeVar("P", bound=type[GraphPooling])


def register_pooling(name: str, overwrite: bool = False) -> Callable[[P], P]:
    """Class decorator: register a :class:`GraphPooling` subclass under ``name`` in :data:`POOLINGS` (names
    normalised; a different class under a taken name needs ``overwrite=True``)."""

    register = POOLINGS.decorator(name, overwrite=overwrite, name_attr="name")

    def deco(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, GraphPooling)):
            raise TypeError(f"register_pooling('{name}') expects a GraphPooling subclass, got {cls!r}")
        return register(cls)

    return deco


def available_poolings() -> list[str]:
    """Sorted names of the registered pooling operators."""
    return POOLINGS.names()


def _init_kwargs(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {p for p in params if p not in ("self", "in_channels")}


def get_pooling(name: str, in_channels: int, **kwargs: Any) -> GraphPooling:
    """Build the pooling operator ``name`` for ``in_channels``-wide node features.

    Raises :class:`~pa_geo.errors.ConfigError` for an unknown name (did-you-mean + the known ones) or a keyword that
    no registered operator accepts.
    """
    key = POOLINGS.resolve(name)
    cls = POOLINGS.get(key)
    accepted = _init_kwargs(cls)
    known_anywhere = set().union(*(_init_kwargs(POOLINGS.get(n)) for n in POOLINGS.names()))
    unknown = sorted(set(kwargs) - known_anywhere)
    if unknown:
        raise ConfigError(f"pooling '{key}': unknown option(s) {', '.join(unknown)}; '{key}' takes "
                          f"{', '.join(sorted(accepted)) or 'no options'}")
    dropped = sorted(set(kwargs) - accepted)
    if dropped:
        log.info("pooling '%s' ignores option(s) %s meant for other operators", key, ", ".join(dropped))
    return cls(in_channels, **{k: v for k, v in kwargs.items() if k in accepted})
