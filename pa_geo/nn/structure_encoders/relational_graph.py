"""GearNet's multi-relational residue graph and its spatial line graph, built on the fly from a residue batch.

Definition (Zhang et al. 2023, "Protein Representation Learning by Geometric Structure Pretraining", ICLR, sec. 3.1;
TorchDrug ``torchdrug/layers/geometry/function.py``: ``SequentialEdge``, ``SpatialEdge``, ``KNNEdge``;
``graph.py``: ``GraphConstruction`` and ``SpatialLineGraph``; configured in DeepGraphLearning/GearNet
``config/downstream/EC/gearnet_edge.yaml`` as ``SequentialEdge(max_distance=2)``, ``SpatialEdge(radius=10.0,
min_distance=5)``, ``KNNEdge(k=10, min_distance=5)``). Nodes are residues (CA = ``pos``); with ``d = 2``:

* relations ``0 .. 2d`` (sequential): an edge ``i -> i + o`` for every offset ``o`` in ``-d .. d`` (``o = 0`` is a
  self loop, as in TorchDrug) between residues of the same protein and the same chain, relation ``o + d``;
* relation ``2d + 1`` (radius): ``j -> i`` for positioned residues with ``|x_i - x_j| < 10`` A and
  ``|i - j| >= 5`` (residue index difference within the protein, as TorchDrug's ``atom2residue`` difference);
  torch-cluster keeps at most ``max_num_neighbors`` (TorchDrug's default 32) sources per target;
* relation ``2d + 2`` (kNN): ``j -> i`` for the ``k = 10`` nearest positioned residues ``j`` of ``i``, then the pairs
  with ``|i - j| < 5`` are dropped (the filter runs after the kNN search, so a residue keeps <= 10 such edges).

Both spatial types also drop zero-length edges. The same residue pair may appear under several relations (TorchDrug
keeps them all). Edges never join two proteins (every neighbour search runs per protein). Edge features are
TorchDrug's ``edge_gearnet``: one-hot residue type of source and target, one-hot relation, one-hot
``min(|i - j|, 10)``, and the CA-CA distance in Angstrom (0 when either end has no position).

The spatial line graph has one node per edge and an edge ``(k -> j) -> (j -> i)`` for every pair of edges meeting
at residue j; its relation is the angle between ``x_k - x_j`` and ``x_i - x_j`` cut into ``num_angle_bin`` equal bins
of [0, pi] (TorchDrug ``SpatialLineGraph``). Pairs touching a residue without a position are left out here (TorchDrug
has no such residues).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric import EdgeIndex

from pa_geo.nn.structure_encoders.inputs import knn_edges, radius_edges

NUM_RESIDUE_TYPES = 21  # pa_geo's residue_type: 20 amino acids + X
MAX_SEQ_DIST = 10  # TorchDrug GraphConstruction.max_seq_dist


@dataclass
class RelationalGraph:
    """A directed multi-relational graph: ``edge_index`` [2, E] (row 0 source, row 1 target), ``relation`` [E] in
    ``0 .. num_relation - 1``, over ``num_nodes`` nodes.

    Its sums are sparse matrix products (PyG ``EdgeIndex``, sorted once per graph; backward reuses its cached
    transpose): :meth:`adjacency` is the [num_nodes * R, num_nodes] matrix whose row ``i * R + r`` sums the sources
    of i's incoming relation-r edges, :meth:`edge_to_target` the [num_nodes * R, E] matrix that sums the edges
    themselves into their target's relation slot."""

    edge_index: Tensor
    relation: Tensor
    num_relation: int
    num_nodes: int

    def __post_init__(self) -> None:
        self._cache: dict[str, EdgeIndex] = {}

    @property
    def num_edges(self) -> int:
        return int(self.relation.numel())

    def _operator(self, key: str, cols: Tensor, num_cols: int) -> EdgeIndex:
        if key not in self._cache:
            rows = self.edge_index[1] * self.num_relation + self.relation
            op = EdgeIndex(torch.stack([rows, cols]), sparse_size=(self.num_nodes * self.num_relation, num_cols))
            self._cache[key] = op.sort_by("row")[0]
        return self._cache[key]

    def adjacency(self) -> EdgeIndex:
        """Sparse [num_nodes * R, num_nodes] 0/1 matrix (duplicate edges count twice)."""
        return self._operator("adjacency", self.edge_index[0], self.num_nodes)

    def edge_to_target(self) -> EdgeIndex:
        """Sparse [num_nodes * R, E]: entry (i * R + r, e) = 1 for every relation-r edge e into i."""
        return self._operator("edge_to_target", torch.arange(self.num_edges, device=self.relation.device),
                              self.num_edges)


def relational_sum(operator: EdgeIndex, x: Tensor, num_nodes: int, num_relation: int) -> Tensor:
    """Per-relation sum of ``x`` over each node's in-edges: ``operator`` [num_nodes * R, M] (:class:`RelationalGraph`
    ``adjacency`` / ``edge_to_target``), ``x`` [M, D] -> [num_nodes, R * D] (slot r holds the sum over relation-r
    edges; TorchDrug ``GeometricRelationalGraphConv`` sums without degree normalisation)."""
    return operator.matmul(x).view(num_nodes, num_relation * x.shape[-1])


def _sequential(segment: Tensor, max_offset: int) -> tuple[Tensor, Tensor]:
    n = segment.numel()
    parts, rels = [], []
    for offset in range(-max_offset, max_offset + 1):
        if abs(offset) >= n:
            continue
        src = torch.arange(max(0, -offset), n - max(0, offset), device=segment.device)
        dst = src + offset
        same = segment[src] == segment[dst]
        src, dst = src[same], dst[same]
        parts.append(torch.stack([src, dst]))
        rels.append(torch.full_like(src, offset + max_offset))
    return torch.cat(parts, dim=1), torch.cat(rels)


def _spatial_filter(edges: Tensor, pos: Tensor, min_seq_distance: int) -> Tensor:
    src, dst = edges
    keep = (src - dst).abs() >= min_seq_distance
    keep &= (pos[src] - pos[dst]).norm(dim=-1) >= 1e-10
    return edges[:, keep]


def gearnet_graph(pos: Tensor, pos_mask: Tensor, batch_index: Tensor, segment: Tensor, max_seq_offset: int = 2,
                  radius: float = 10.0, k: int = 10, min_seq_distance: int = 5,
                  max_num_neighbors: int = 32) -> RelationalGraph:
    """GearNet's relational graph over one batch (definition in the module docstring).

    ``pos`` [N, 3] CA, ``pos_mask`` [N] bool, ``batch_index`` [N], ``segment`` [N] (equal iff same protein and
    chain, :func:`~pa_geo.nn.structure_encoders.inputs.segment_index`) -> :class:`RelationalGraph` with
    ``2 * max_seq_offset + 3`` relations (sequential offsets, radius, kNN).
    """
    seq_edges, seq_rel = _sequential(segment, max_seq_offset)
    r_radius = 2 * max_seq_offset + 1
    spatial = [_spatial_filter(radius_edges(pos, pos_mask, batch_index, radius, max_num_neighbors), pos,
                               min_seq_distance),
               _spatial_filter(knn_edges(pos, pos_mask, batch_index, k), pos, min_seq_distance)]
    edge_index = torch.cat([seq_edges, *spatial], dim=1)
    relation = torch.cat([seq_rel, *(torch.full((e.shape[1],), r_radius + t, dtype=torch.long, device=pos.device)
                                     for t, e in enumerate(spatial))])
    return RelationalGraph(edge_index, relation, r_radius + 2, int(pos.shape[0]))


def sequential_subgraph(graph: RelationalGraph, max_seq_offset: int) -> RelationalGraph:
    """The sequential edges of a :func:`gearnet_graph` without the offset-0 self loops (relations ``0 .. 2d`` but
    ``d``), same relation ids and node count: the edge set of GearNet-Edge's reduced (``"sequential"``) edge
    message passing."""
    keep = (graph.relation <= 2 * max_seq_offset) & (graph.relation != max_seq_offset)
    return RelationalGraph(graph.edge_index[:, keep], graph.relation[keep], graph.num_relation, graph.num_nodes)


def gearnet_edge_features(graph: RelationalGraph, pos: Tensor, pos_mask: Tensor, residue_type: Tensor) -> Tensor:
    """TorchDrug's ``edge_gearnet`` features [E, 2 * 21 + R + 11 + 1]: one-hot source / target residue type,
    one-hot relation, one-hot ``min(|i - j|, 10)``, CA-CA distance in Angstrom (0 without positions)."""
    src, dst = graph.edge_index
    seq_dist = (src - dst).abs().clamp(max=MAX_SEQ_DIST)
    both = (pos_mask[src] & pos_mask[dst]).float()
    dist = (pos[src] - pos[dst]).norm(dim=-1) * both
    return torch.cat([F.one_hot(residue_type[src], NUM_RESIDUE_TYPES), F.one_hot(residue_type[dst], NUM_RESIDUE_TYPES),
                      F.one_hot(graph.relation, graph.num_relation), F.one_hot(seq_dist, MAX_SEQ_DIST + 1),
                      dist.unsqueeze(-1)], dim=-1).float()


def spatial_line_graph(graph: RelationalGraph, pos: Tensor, pos_mask: Tensor, num_angle_bin: int = 8
                       ) -> RelationalGraph:
    """The line graph of ``graph`` with angle-bin relations (module docstring): nodes = ``graph``'s E edges, an edge
    ``a -> b`` for each edge a = (k -> j) and edge b = (j -> i), relation ``floor(angle_kji / pi * num_angle_bin)``.

    Built without Python loops: edges grouped by target (incoming to j) and by source (outgoing from j), and every
    (incoming, outgoing) pair at each j enumerated from the degree products. The angle's bin comes from its cosine,
    ``-u_a . u_b`` with ``u`` the unit edge directions, against the bin edges' cosines; a zero-length edge (the
    offset-0 self loop) makes the angle 0 (bin 0), as TorchDrug's ``atan2(0, 0)``.
    """
    src, dst = graph.edge_index
    n = graph.num_nodes
    deg_in, deg_out = torch.bincount(dst, minlength=n), torch.bincount(src, minlength=n)
    by_target, by_source = torch.argsort(dst), torch.argsort(src)
    pairs = deg_in * deg_out
    hub = torch.repeat_interleave(torch.arange(n, device=src.device), pairs)
    local = torch.arange(hub.numel(), device=src.device) - (torch.cumsum(pairs, 0) - pairs).repeat_interleave(pairs)
    width = deg_out.repeat_interleave(pairs)
    incoming = by_target[(torch.cumsum(deg_in, 0) - deg_in)[hub] + torch.div(local, width, rounding_mode="floor")]
    outgoing = by_source[(torch.cumsum(deg_out, 0) - deg_out)[hub] + local % width]
    diff = pos[dst] - pos[src]
    length = diff.norm(dim=-1, keepdim=True)
    unit = diff / length.clamp_min(1e-10)
    positioned = pos_mask[src] & pos_mask[dst]
    if not bool(positioned.all()):
        keep = positioned[incoming] & positioned[outgoing]
        incoming, outgoing = incoming[keep], outgoing[keep]
    cosine = -(unit[incoming] * unit[outgoing]).sum(-1)
    # bin t covers angles [t, t + 1) * pi / B, i.e. cosines (cos((t + 1) pi / B), cos(t pi / B)]
    edges = -torch.cos(torch.arange(1, num_angle_bin, device=pos.device, dtype=pos.dtype) * math.pi / num_angle_bin)
    relation = torch.bucketize(-cosine, edges, right=True)
    degenerate = (length[:, 0] < 1e-10)
    relation = relation * ~(degenerate[incoming] | degenerate[outgoing])
    return RelationalGraph(torch.stack([incoming, outgoing]), relation, int(num_angle_bin), graph.num_edges)
