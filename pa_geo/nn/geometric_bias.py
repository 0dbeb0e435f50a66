"""The adapter's geometric attention bias: a learned per-head score term from where two nodes are.

For a query node i and a key node j (of the same protein) every attention layer adds, per head h,

    b_h(i, j) = w_h . RBF(|x_i - x_j|) * [both positioned]  +  s_h[bucket(j - i)]

* the distance term: Gaussian RBFs of the CA-CA distance (:func:`pa_geo.graphs.features.rbf`, ``num_rbf`` centres
  on [0, ``max_distance``] A) through a bias-free Linear to one scalar per head. Pairs where either node has no
  position (``pos_mask`` False, e.g. sequence-only proteins) get no distance term; beyond ``max_distance`` the RBFs
  vanish, so far pairs and unpositioned pairs both get 0;
* the sequence-separation term (``seq_sep=True``): the index offset j - i of two nodes of the same chain, clipped to
  +-``max_seq_sep``, or one more bucket for two different chains, looked up in a per-head table (an Embedding).
  It reads ``chain_index`` (residue graphs); a graph without one (an atom graph, a hand-made graph) counts as one
  chain in node order, so the term and its parameters are used on every batch (DDP needs every parameter used).

Distances only: the bias, and so the adapter's output, is invariant to rotating and translating the coordinates
(and distances are taken as coordinate differences, so a protein 1000 A from the origin gives the same numbers).
A per-head constant would be cancelled by the softmax, hence no Linear bias.

Where it enters (:mod:`pa_geo.nn.attention`, :mod:`pa_geo.nn.cross_attention`, :mod:`pa_geo.nn.varlen`):

* global mode: :meth:`GeometricBias.pairs` inside every query chunk of :func:`~pa_geo.nn.varlen.varlen_attention`
  (a float ``attn_mask`` of SDPA, key padding merged in as -inf), recomputed in backward with the chunk, so no
  L x L tensor beyond one chunk exists;
* graph mode: the same two quantities per edge (:func:`edge_geometry`), as edge features of the self-attention's
  ``TransformerConv`` (:meth:`EdgeGeometry.features`) and as a per-head score bias of the cross-attention
  (:meth:`GeometricBias.edges`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pa_geo.graphs.features import rbf


@dataclass(frozen=True)
class BiasSpec:
    """Settings of the geometric bias shared by every layer of one adapter (see the module docstring)."""

    num_rbf: int = 16
    max_distance: float = 20.0
    seq_sep: bool = True
    max_seq_sep: int = 32

    @property
    def num_buckets(self) -> int:
        """Sequence-separation buckets: offsets -max..max, then "other chain"."""
        return 2 * self.max_seq_sep + 2

    @property
    def edge_dim(self) -> int:
        """Width of :meth:`EdgeGeometry.features`: RBFs ++ one-hot separation bucket (if ``seq_sep``)."""
        return self.num_rbf + (self.num_buckets if self.seq_sep else 0)


@dataclass(frozen=True)
class NodeGeometry:
    """Per-node inputs of the bias, any leading shape ``[..., L]``.

    pos      [..., L, 3] float32 positions (zeros where there is none)
    has_pos  [..., L]    bool, which nodes have a real position
    segment  [..., L]    int64 chain of the node (pairs compared only within one protein), or None: no sequence term
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

    def rows(self, start: int, end: int) -> NodeGeometry:
        """Nodes ``start:end`` along the last node axis."""
        return NodeGeometry(self.pos[..., start:end, :], self.has_pos[..., start:end],
                            None if self.segment is None else self.segment[..., start:end],
                            self.index[..., start:end])


def separation_bucket(offset: Tensor, same_chain: Tensor, max_seq_sep: int) -> Tensor:
    """Sequence-separation bucket: ``offset`` j - i clipped to +-max -> ``0 .. 2 max``; other chain -> ``2 max + 1``."""
    return torch.where(same_chain, offset.clamp(-max_seq_sep, max_seq_sep) + max_seq_sep, 2 * max_seq_sep + 1)


@dataclass(frozen=True)
class EdgeGeometry:
    """The bias inputs of E edges (source j -> target i): ``rbf`` [E, num_rbf] (zero rows where an end has no
    position) and ``bucket`` [E] int64 separation bucket (None without a sequence term)."""

    rbf: Tensor
    bucket: Tensor | None
    num_buckets: int

    def features(self) -> Tensor:
        """Edge features [E, BiasSpec.edge_dim]: RBFs ++ one-hot bucket."""
        if self.bucket is None:
            return self.rbf
        return torch.cat([self.rbf, F.one_hot(self.bucket, self.num_buckets).to(self.rbf.dtype)], dim=-1)


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
    return EdgeGeometry(feats, bucket, spec.num_buckets)


class GeometricBias(nn.Module):
    """One attention layer's learned bias (module docstring): ``distance`` = Linear(num_rbf -> n_heads, no bias),
    ``separation`` = Embedding(num_buckets, n_heads) (``spec.seq_sep``)."""

    def __init__(self, n_heads: int, spec: BiasSpec) -> None:
        super().__init__()
        self.spec, self.n_heads = spec, int(n_heads)
        self.distance = nn.Linear(spec.num_rbf, n_heads, bias=False)
        self.separation = nn.Embedding(spec.num_buckets, n_heads) if spec.seq_sep else None

    @property
    def elements_per_pair(self) -> int:
        """Floats :meth:`pairs` holds per (query, key) pair at its peak (RBFs, distances, offsets, outputs), for the
        chunk budget of :func:`~pa_geo.nn.varlen.chunked_sdpa`."""
        return self.spec.num_rbf + 4 * self.n_heads + 6

    def pairs(self, query: NodeGeometry, key: NodeGeometry) -> Tensor:
        """Bias of every (query, key) pair: query fields ``[b, Lq]``, key fields ``[b, Lk]`` -> ``[b, H, Lq, Lk]``."""
        dist = torch.cdist(query.pos, key.pos, compute_mode="donot_use_mm_for_euclid_dist")    # [b, Lq, Lk]
        both = query.has_pos[:, :, None] & key.has_pos[:, None, :]
        out = self.distance(rbf(dist, self.spec.max_distance, self.spec.num_rbf)) * both[..., None]  # [b, Lq, Lk, H]
        if self.separation is not None and query.segment is not None:
            bucket = separation_bucket(key.index[:, None, :] - query.index[:, :, None],
                                       query.segment[:, :, None] == key.segment[:, None, :], self.spec.max_seq_sep)
            out = out + self.separation(bucket)
        return out.permute(0, 3, 1, 2)

    def edges(self, geometry: EdgeGeometry) -> Tensor:
        """Per-edge, per-head bias [E, H]."""
        out = self.distance(geometry.rbf)
        if self.separation is not None and geometry.bucket is not None:
            out = out + self.separation(geometry.bucket)
        return out
