"""Geometric vector perceptron layers (Jing et al. 2021, "Learning from Protein Structure with Geometric Vector
Perceptrons", ICLR; "Equivariant Graph Neural Networks for 3D Macromolecular Structure", 2021, for vector gating).

Written after the descriptions in the papers and drorlab/gvp-pytorch (MIT) ``gvp/__init__.py`` (``GVP``,
``LayerNorm``, ``Dropout``, ``GVPConv``, ``GVPConvLayer``). A feature is a pair ``(s [M, S], v [M, 3, V])`` of
invariant scalars and equivariant vectors, stored channels-last (gvp-pytorch stores ``[M, V, 3]`` and transposes
around every linear map); every operation on ``v`` is a linear map across channels (never across x/y/z) or a
multiplication by an invariant, so rotating the input rotates ``v`` and leaves ``s`` unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter

from pa_geo.errors import ConfigError

_EPS = 1e-8
SV = tuple[Tensor, Tensor]


def vector_norm(v: Tensor, eps: float = _EPS) -> Tensor:
    """``v [..., 3, C]`` -> ``[..., C]`` L2 norms, kept >= sqrt(eps) so the gradient is finite at zero vectors."""
    return v.square().sum(-2).clamp_min(eps).sqrt()


class GVP(nn.Module):
    """One geometric vector perceptron ``(s [M, si], v [M, 3, vi]) -> (s [M, so], v [M, 3, vo])``.

    Vectors are stored channels-last, ``[M, 3, C]`` (so ``nn.Linear`` mixes channels directly). ``vh = W_h v``
    (``h_dim`` channels, default ``max(vi, vo)``); ``s' = act(W_s [s, |vh|] + b)``; ``v' = W_v vh``, scaled per
    channel by ``sigmoid(W_g sigmoid(s_pre) + b_g)`` with ``vector_gate`` (``s_pre`` = ``s'`` before its
    activation), else by ``sigmoid(|v'|)``. ``activations=False`` makes the layer linear (no scalar activation and
    no vector nonlinearity; a gate, when used, acts on ``s_pre`` itself). With ``vi = 0`` the output vectors are
    zeros; with ``vo = 0`` ``v'`` is an empty [M, 3, 0].
    """

    def __init__(self, in_dims: tuple[int, int], out_dims: tuple[int, int], h_dim: int | None = None,
                 activations: bool = True, vector_gate: bool = True) -> None:
        super().__init__()
        (self.si, self.vi), (self.so, self.vo) = in_dims, out_dims
        self.h_dim = (h_dim or max(self.vi, self.vo)) if self.vi else 0
        self.activations, self.vector_gate = activations, vector_gate
        self.wh = nn.Linear(self.vi, self.h_dim, bias=False) if self.vi else None
        self.ws = nn.Linear(self.si + self.h_dim, self.so)
        self.wv = nn.Linear(self.h_dim, self.vo, bias=False) if self.vi and self.vo else None
        self.wg = nn.Linear(self.so, self.vo) if self.wv is not None and vector_gate else None

    def forward(self, x: SV) -> SV:
        s, v = x
        if self.wh is None:
            return self.finish(self.ws(s), None)
        vh = self.wh(v)
        return self.finish(self.ws(torch.cat([s, vector_norm(vh)], dim=-1)), vh)

    def finish(self, s_pre: Tensor, vh: Tensor | None) -> SV:
        """The output from the scalar pre-activation ``s_pre`` [M, so] and the hidden vectors ``vh`` [M, 3, h]
        (split out so a caller can compute ``s_pre`` from precomputed parts of ``W_s``, as GVPConvLayer does)."""
        if self.wv is not None:
            v_out = self.wv(vh)
            if self.wg is not None:
                gate = self.wg(torch.sigmoid(s_pre) if self.activations else s_pre)
                v_out = v_out * torch.sigmoid(gate).unsqueeze(-2)
            elif self.activations:
                v_out = v_out * torch.sigmoid(vector_norm(v_out)).unsqueeze(-2)
        else:
            v_out = s_pre.new_zeros(s_pre.shape[0], 3, self.vo)
        return (F.relu(s_pre) if self.activations else s_pre), v_out


class GVPLayerNorm(nn.Module):
    """``nn.LayerNorm`` on the scalars; vectors divided by the root-mean-square of their channel norms."""

    def __init__(self, dims: tuple[int, int]) -> None:
        super().__init__()
        self.scalar_norm = nn.LayerNorm(dims[0])
        self.vectors = dims[1]

    def forward(self, x: SV) -> SV:
        s, v = x
        if not self.vectors:
            return self.scalar_norm(s), v
        rms = v.square().sum(-2).clamp_min(_EPS).mean(-1, keepdim=True).sqrt()  # [M, 1]
        return self.scalar_norm(s), v / rms.unsqueeze(-1)


class GVPDropout(nn.Module):
    """Dropout of scalar entries and of whole vector channels (a dropped vector loses all three coordinates)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.scalar = nn.Dropout(p)

    def forward(self, x: SV) -> SV:
        s, v = x
        if not self.training or self.p == 0.0 or v.numel() == 0:
            return self.scalar(s), v
        keep = torch.full((v.shape[0], 1, v.shape[2]), 1.0 - self.p, device=v.device, dtype=v.dtype)
        return self.scalar(s), v * torch.bernoulli(keep) / (1.0 - self.p)


def _chain(in_dims: tuple[int, int], out_dims: tuple[int, int], hidden: tuple[int, int], n: int,
           vector_gate: bool) -> nn.Sequential:
    """``n`` GVPs ``in -> hidden -> ... -> out``; the last one is linear (no activations)."""
    dims = [in_dims] + [hidden] * (n - 1) + [out_dims]
    return nn.Sequential(*(GVP(dims[i], dims[i + 1], activations=i < n - 1, vector_gate=vector_gate)
                           for i in range(n)))


class GVPConvLayer(nn.Module):
    """One GVP-GNN layer on node features ``(s [N, ns], v [N, 3, nv])`` and edge features ``(s [E, es], v [E, 3, ev])``.

    Message ``m_ji`` = 3 GVPs on ``[h_j, e_ji, h_i]`` (source, edge, target), averaged over each target's in-edges;
    ``h = LN(h + dropout(m))``; feed-forward 2 GVPs ``(ns, nv) -> (4 ns, 2 nv) -> (ns, nv)``; ``h = LN(h +
    dropout(ff(h)))`` (gvp-pytorch ``GVPConvLayer`` with ``n_message=3, n_feedforward=2``, mean aggregation).
    The first message GVP's linear maps are split by input block, so the source and target blocks run once per
    node and are gathered to the edges (the same function as on the concatenated input, at a fraction of the cost).
    """

    def __init__(self, node_dims: tuple[int, int], edge_dims: tuple[int, int], dropout: float = 0.1,
                 vector_gate: bool = True, n_message: int = 3, n_feedforward: int = 2) -> None:
        super().__init__()
        if n_message < 1 or n_feedforward < 1:
            raise ConfigError("GVPConvLayer: n_message and n_feedforward must be >= 1")
        (ns, nv), (es, ev) = node_dims, edge_dims
        self.message = _chain((2 * ns + es, 2 * nv + ev), node_dims, node_dims, n_message, vector_gate)
        self.feedforward = _chain(node_dims, node_dims, (4 * ns, 2 * nv), n_feedforward, vector_gate)
        self.norms = nn.ModuleList([GVPLayerNorm(node_dims), GVPLayerNorm(node_dims)])
        self.dropouts = nn.ModuleList([GVPDropout(dropout), GVPDropout(dropout)])
        self.ns, self.es, self.nv, self.ev = ns, es, nv, ev

    def _first_message(self, x: SV, edge_index: Tensor, edge_attr: SV) -> SV:
        first: GVP = self.message[0]
        (s, v), (es, ev), (src, dst) = x, edge_attr, edge_index
        ns, nv = self.ns, self.nv
        w_s, w_h = first.ws.weight, first.wh.weight  # columns: [s_j | e_s | s_i | |vh|], [v_j | e_v | v_i]
        s_node = F.linear(s, torch.cat([w_s[:, :ns], w_s[:, ns + self.es:2 * ns + self.es]]))
        v_node = F.linear(v, torch.cat([w_h[:, :nv], w_h[:, nv + self.ev:]]))
        h, so = first.h_dim, first.so
        vh = v_node[src, :, :h] + v_node[dst, :, h:] + F.linear(ev, w_h[:, nv:nv + self.ev])
        s_pre = (s_node[src, :so] + s_node[dst, so:] + F.linear(es, w_s[:, ns:ns + self.es])
                 + F.linear(vector_norm(vh), w_s[:, 2 * ns + self.es:], first.ws.bias))
        return first.finish(s_pre, vh)

    def forward(self, x: SV, edge_index: Tensor, edge_attr: SV) -> SV:
        s, v = x
        ms, mv = self.message[1:](self._first_message(x, edge_index, edge_attr))
        agg = scatter(torch.cat([ms, mv.flatten(1)], dim=-1), edge_index[1], dim=0, dim_size=s.shape[0],
                      reduce="mean")
        ds, dv = self.dropouts[0]((agg[:, :self.ns], agg[:, self.ns:].view(-1, 3, self.nv)))
        s, v = self.norms[0]((s + ds, v + dv))
        ds, dv = self.dropouts[1](self.feedforward((s, v)))
        return self.norms[1]((s + ds, v + dv))
