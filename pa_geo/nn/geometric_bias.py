"""The adapter's geometric attention bias: a learned per-head score term from where two nodes are.

For a query node i and a key node j (of the same protein) attention layer l adds, per head h,

    b_lh(i, j) = A_l[h] . m(i, j),    m(i, j) = W . RBF(|x_i - x_j|) * [both positioned] + S[bucket(j - i)]

* ``m`` (:class:`PairMap`, one per adapter, ``channels`` = K wide): Gaussian RBFs of the CA-CA distance
  (:func:`pa_geo.graphs.features.rbf`, ``num_rbf`` centres on [0, ``max_distance``] A) through a bias-free Linear
  (tabulated every 1/64 A and interpolated for pairs of nodes, see :class:`PairMap`),
  plus (``seq_sep``) a learned vector per sequence-separation bucket: the index offset j - i of two nodes of the
  same chain clipped to +-``max_seq_sep``, or one more bucket for two different chains. Pairs where either node has
  no position (``pos_mask`` False, e.g. sequence-only proteins) get no distance term; beyond ``max_distance`` the
  RBFs vanish. A graph without ``chain_index`` (an atom graph, a hand-made graph) counts as one chain;
* ``A_l`` (:class:`GeometricBias`, one per attention layer): a bias-free Linear K -> n_heads of the layer's own.

So every layer has its own small Linear from the pair's geometry to one scalar per head, factorised through K
shared channels: the per-pair work of a layer is a K -> H mix of a map computed once per forward, not an RBF
expansion per layer (on a CPU the per-layer RBF cost several times the attention itself). Distances only: the
bias, and so the adapter's output, is invariant to rotating and translating the coordinates (distances are taken
as coordinate differences, so a protein 1000 A from the origin gives the same numbers). A per-head constant
would be cancelled by the softmax, hence no Linear biases.

Where it enters (:mod:`pa_geo.nn.attention`, :mod:`pa_geo.nn.cross_attention`, :mod:`pa_geo.nn.varlen`):

* global mode: inside every query chunk of :func:`~pa_geo.nn.varlen.varlen_attention` as a float score bias
  (key padding merged in as -inf); the map of graphs up to ``PAIR_CACHE_LENGTH`` long is computed once per forward
  for all layers, longer graphs compute it per chunk (recomputed in backward), so no L x L tensor of a long protein
  exists beyond one chunk;
* graph mode: the map per edge (:func:`edge_geometry` -> :meth:`PairMap.edges`), as edge features of the
  self-attention's ``TransformerConv`` and, mixed per layer, as a per-head score bias of the cross-attention.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pa_geo.graphs.features import rbf


@dataclass(frozen=True)
class BiasSpec:
    """Settings of the geometric bias shared by every layer of one adapter (see the module docstring)."""

    num_rbf: int = 16
    max_distance: float = 20.0
    seq_sep: bool = True
    max_seq_sep: int = 32
    channels: int = 4

    @property
    def num_buckets(self) -> int:
        """Sequence-separation buckets: offsets -max..max, then "other chain"."""
        return 2 * self.max_seq_sep + 2


@dataclass(frozen=True)
class NodeGeometry:
    """Per-node inputs of the bias, any leading shape ``[..., L]``.

    pos      [..., L, 3] float32 positions (zeros where there is none)
    has_pos  [..., L]    bool, which nodes have a real position
    segment  [..., L]    int64 chain of the node (pairs are only ever compared within one protein), or None: no
                         sequence term
    index    [..., L]    int64 node index; j - i within one chain is the sequence separation
    """

    pos: Tensor
    has_pos: Tensor
    segment: Tensor | None
    index: Tensor

    @classmethod
    def of_batch(cls, batch: object, num_nodes: int, device: torch.device) -> NodeGeometry:
        """From a PyG batch: ``pos`` [N, 3] (required), ``pos_mask`` [N] (absent: every node positioned),
        ``chain_index`` [N] (absent: one chain per graph)."""
        pos = getattr(batch, "pos", None)
        if not isinstance(pos, Tensor) or pos.shape != (num_nodes, 3):
            got = None if pos is None else tuple(getattr(pos, "shape", ()))
            raise ValueError(f"the geometric bias needs batch.pos [N={num_nodes}, 3], got {got}")
        mask = getattr(batch, "pos_mask", None)
        mask = torch.ones(num_nodes, dtype=torch.bool, device=device) if mask is None else mask.to(device).bool()
        chain = getattr(batch, "chain_index", None)
        chain = torch.zeros(num_nodes, dtype=torch.long, device=device) if chain is None else chain.to(device)
        pos = torch.where(mask[:, None], pos.to(device=device, dtype=torch.float32), 0.0)
        return cls(pos, mask, chain, torch.arange(num_nodes, device=device))

    def take(self, index: Tensor) -> NodeGeometry:
        """The nodes ``index`` (any shape ``S``) -> fields ``[*S, ...]``."""
        return NodeGeometry(self.pos[index], self.has_pos[index],
                            None if self.segment is None else self.segment[index], self.index[index])

    def rows(self, rows: slice | Tensor) -> NodeGeometry:
        """Nodes ``rows`` (a slice or an index tensor) along the last node axis."""
        return NodeGeometry(self.pos[..., rows, :], self.has_pos[..., rows],
                            None if self.segment is None else self.segment[..., rows], self.index[..., rows])


def separation_bucket(offset: Tensor, same_chain: Tensor, max_seq_sep: int) -> Tensor:
    """Sequence-separation bucket: ``offset`` j - i clipped to +-max -> ``0 .. 2 max``; other chain -> ``2 max + 1``."""
    return torch.where(same_chain, offset.clamp(-max_seq_sep, max_seq_sep) + max_seq_sep, 2 * max_seq_sep + 1)


GRID_STEP = 1.0 / 64  # A between the distances at which a pair map's distance term is tabulated


def grid_size(spec: BiasSpec) -> int:
    """Tabulated distances: 0 .. ``max_distance`` + 4 RBF widths (where every RBF has vanished), ``GRID_STEP``
    apart."""
    return int(math.ceil((spec.max_distance * (1.0 + 4.0 / spec.num_rbf)) / GRID_STEP)) + 1


@dataclass(frozen=True)
class PairFeatures:
    """The bias inputs of the (query, key) pairs of b graphs, all [b, Lq, Lk]: ``cell`` int64 grid cell of the
    distance (``grid_size`` for a pair where a node has no position: the map's zero rows), ``frac`` float32 place in
    the cell, ``bucket`` int64 separation bucket (None without the term)."""

    cell: Tensor
    frac: Tensor
    bucket: Tensor | None


def pair_features(query: NodeGeometry, key: NodeGeometry, spec: BiasSpec) -> PairFeatures:
    """Features of every (query, key) pair: query fields ``[b, Lq]``, key fields ``[b, Lk]``. Distances are
    coordinate differences (``cdist`` without the matrix-product shortcut, which loses precision far from the
    origin)."""
    size = grid_size(spec)
    dist = torch.cdist(query.pos, key.pos, compute_mode="donot_use_mm_for_euclid_dist")     # [b, Lq, Lk]
    both = query.has_pos[:, :, None] & key.has_pos[:, None, :]
    x = dist.div_(GRID_STEP).clamp_(max=size - 1)
    cell = x.long().clamp_(max=size - 2)
    frac = (x - cell).mul_(both)
    cell = torch.where(both, cell, size)
    bucket = None
    if spec.seq_sep and query.segment is not None:
        bucket = separation_bucket(key.index[:, None, :] - query.index[:, :, None],
                                   query.segment[:, :, None] == key.segment[:, None, :], spec.max_seq_sep)
    return PairFeatures(cell, frac, bucket)


@dataclass(frozen=True)
class EdgeGeometry:
    """The bias inputs of E edges (source j -> target i): ``rbf`` [E, num_rbf] (zero rows where an end has no
    position) and ``bucket`` [E] int64 separation bucket (None without a sequence term)."""

    rbf: Tensor
    bucket: Tensor | None


def edge_geometry(nodes: NodeGeometry, edge_index: Tensor, spec: BiasSpec) -> EdgeGeometry:
    """Bias inputs of the edges ``edge_index`` [2, E] (row 0 source j, row 1 target i) of a batch's nodes [N]."""
    src, dst = edge_index
    both = nodes.has_pos[src] & nodes.has_pos[dst]
    dist = (nodes.pos[src] - nodes.pos[dst]).norm(dim=-1)
    feats = rbf(dist, spec.max_distance, spec.num_rbf) * both[:, None]
    bucket = None
    if spec.seq_sep and nodes.segment is not None:
        bucket = separation_bucket(nodes.index[src] - nodes.index[dst], nodes.segment[src] == nodes.segment[dst],
                                   spec.max_seq_sep)
    return EdgeGeometry(feats, bucket)


class _PairLookup(torch.autograd.Function):
    """Rows of ``table`` [T, K]: linear interpolation between rows ``cell`` and ``cell + 1`` by ``frac``, plus row
    ``bucket`` when given (all [b, Lq, Lk]) -> [K, b, Lq, Lk] (channels first). Backward by ``index_add_`` over
    rows (an order of magnitude faster on CPU than ``embedding``'s backward for millions of indices)."""

    @staticmethod
    def forward(ctx, table: Tensor, cell: Tensor, frac: Tensor, bucket: Tensor | None) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(cell, frac, bucket)
        ctx.rows = table.shape[0]
        flat = cell.reshape(-1)
        out = torch.lerp(table.index_select(0, flat), table.index_select(0, flat + 1), frac.reshape(-1, 1))
        if bucket is not None:
            out += table.index_select(0, bucket.reshape(-1))
        return out.t().contiguous().view(table.shape[1], *cell.shape)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # noqa: ANN001
        cell, frac, bucket = ctx.saved_tensors
        rows = grad.reshape(grad.shape[0], -1).t().contiguous()                            # [P, K]
        upper = rows * frac.reshape(-1, 1)
        flat = cell.reshape(-1)
        out = rows.new_zeros(ctx.rows, rows.shape[1]).index_add_(0, flat, rows - upper)
        out.index_add_(0, flat + 1, upper)
        if bucket is not None:
            out.index_add_(0, bucket.reshape(-1), rows)
        return out, None, None, None


class PairMap(nn.Module):
    """The K-channel geometric map shared by an adapter's layers (module docstring): ``distance`` =
    Linear(num_rbf -> K, no bias), ``separation`` = Embedding(num_buckets, K) (``spec.seq_sep``).

    Pairs of nodes (global mode) read the distance term from a table of ``distance(RBF(d))`` at every
    ``GRID_STEP`` (1/64 A, :func:`grid_size` rows), linearly interpolated (off by less than 1e-4 of the term's
    scale): two row lookups per pair instead of ``num_rbf`` exponentials and a product for every pair of a batch.
    Edges (graph mode) get the exact expression."""

    def __init__(self, spec: BiasSpec) -> None:
        super().__init__()
        self.spec = spec
        self.distance = nn.Linear(spec.num_rbf, spec.channels, bias=False)
        self.separation = nn.Embedding(spec.num_buckets, spec.channels) if spec.seq_sep else None

    @property
    def elements_per_pair(self) -> int:
        """Floats computing the map holds per pair at its peak (distances, cells, offsets, lookups, the map)."""
        return 5 * self.spec.channels + 10

    def table(self) -> Tensor:
        """[grid_size + 2 + num_buckets, K]: the distance term at the grid, two zero rows (pairs without a
        position), the separation rows."""
        size = grid_size(self.spec)
        grid = torch.arange(size, device=self.distance.weight.device, dtype=torch.float32) * GRID_STEP
        rows = [self.distance(rbf(grid, self.spec.max_distance, self.spec.num_rbf)),
                grid.new_zeros(2, self.spec.channels)]
        if self.separation is not None:
            rows.append(self.separation.weight)
        return torch.cat(rows)

    def lookup(self, table: Tensor, feats: PairFeatures) -> Tensor:
        """Rows of ``table`` [T, C] laid out as :meth:`table`'s (the map's, or a layer's mix of it) at the pairs
        ``feats`` -> ``[C, b, Lq, Lk]``."""
        bucket = None
        if self.separation is not None and feats.bucket is not None:
            bucket = feats.bucket + (grid_size(self.spec) + 2)
        return _PairLookup.apply(table, feats.cell, feats.frac, bucket)

    def forward(self, feats: PairFeatures) -> Tensor:
        """Map ``[K, b, Lq, Lk]`` (channels first) of pairs with features ``feats`` (:func:`pair_features`)."""
        return self.lookup(self.table(), feats)

    def pairs(self, query: NodeGeometry, key: NodeGeometry) -> Tensor:
        """Map of every (query, key) pair: query fields ``[b, Lq]``, key fields ``[b, Lk]`` -> ``[K, b, Lq, Lk]``."""
        return self(pair_features(query, key, self.spec))

    def edges(self, geometry: EdgeGeometry) -> Tensor:
        """Map of every edge [E, K]."""
        out = self.distance(geometry.rbf)
        if self.separation is not None and geometry.bucket is not None:
            out = out + self.separation(geometry.bucket)
        return out


class GeometricBias(nn.Module):
    """One attention layer's own Linear from the shared map to one scalar per head: ``mix`` = Linear(K ->
    n_heads, no bias). ``forward(map [K, b, Lq, Lk]) -> [H, b, Lq, Lk]`` (heads first, as the map: one matrix
    product); :meth:`edges` ``[E, K] -> [E, H]``."""

    def __init__(self, n_heads: int, spec: BiasSpec) -> None:
        super().__init__()
        self.spec, self.n_heads = spec, int(n_heads)
        self.mix = nn.Linear(spec.channels, n_heads, bias=False)

    def forward(self, pair_map: Tensor) -> Tensor:
        k, *rest = pair_map.shape
        return torch.mm(self.mix.weight, pair_map.reshape(k, -1)).view(self.n_heads, *rest)

    def pairs(self, pair_map: PairMap, query: NodeGeometry, key: NodeGeometry) -> Tensor:
        """The bias of pairs whose map is not stored (long graphs, per query chunk): the layer's mix folded into
        the map's table first (the map is linear in it), then one lookup per pair -> ``[H, b, Lq, Lk]``."""
        return pair_map.lookup(self.mix(pair_map.table()), pair_features(query, key, pair_map.spec))

    def edges(self, edge_map: Tensor) -> Tensor:
        return self.mix(edge_map)
