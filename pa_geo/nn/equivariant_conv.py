"""An E(3)-equivariant graph convolution built from e3nn parts (the ``e3nn`` entry of the conv registry).

Two tensor-product message passes over the edges of a geometric graph (Tensor Field Network / NequIP style):

1. scalars ``[N, C]`` (x) spherical harmonics of the edge direction -> hidden scalars + vectors (``0e`` + ``1o``),
   tensor-product weights per edge from a radial MLP (``e3nn.nn.FullyConnectedNet``) over a Gaussian basis of the
   edge length (plus any invariant edge features), mean aggregation, gated non-linearity (``e3nn.nn.Gate``);
2. hidden (x) spherical harmonics -> scalars, same radial weighting.

The output is invariant scalars ``[N, out_channels]`` (next stage, pooling and readouts need no geometry
awareness); the hidden vectors are equivariant and can be returned for inspection / tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import Tensor, nn
from torch_geometric.utils import scatter

from pa_geo.errors import ConfigError
from pa_geo.graphs.features import rbf


class EquivariantConv(nn.Module):
    """E(3)-equivariant message passing with invariant scalar output.

    Args:
        in_channels: width C of the input scalars.
        out_channels: width of the output scalars.
        edge_dim: width of *invariant* edge features fed to the radial MLPs (None: distance basis only).
        tp_channels: scalars entering / leaving the tensor products (kept small: TP weights are per edge).
        hidden_scalars / hidden_vectors: multiplicities of the hidden ``0e`` / ``1o`` irreps.
        lmax: maximum degree of the edge spherical harmonics.
        num_basis / max_radius: Gaussian distance basis on [0, max_radius] Angstrom (:func:`pa_geo.graphs.features.rbf`;
            no hard cutoff, so long edges between coarse pooled nodes still carry messages).
        radial_hidden: hidden width of the radial MLPs.
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None, tp_channels: int = 16,
                 hidden_scalars: int = 16, hidden_vectors: int = 8, lmax: int = 1, num_basis: int = 10,
                 max_radius: float = 20.0, radial_hidden: int = 32) -> None:
        super().__init__()
        if lmax < 1:
            raise ConfigError(f"conv 'e3nn': lmax must be >= 1 to see directions, got {lmax}")
        self.num_basis, self.max_radius = int(num_basis), float(max_radius)
        self.edge_dim = int(edge_dim or 0)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.lin_in = nn.Linear(in_channels, tp_channels)
        self.gate = Gate(f"{hidden_scalars}x0e", [F.silu], f"{hidden_vectors}x0e", [torch.sigmoid],
                         f"{hidden_vectors}x1o")
        self.irreps_hidden = self.gate.irreps_out
        self.tp1 = o3.FullyConnectedTensorProduct(f"{tp_channels}x0e", self.irreps_sh, self.gate.irreps_in,
                                                  shared_weights=False)
        self.tp2 = o3.FullyConnectedTensorProduct(self.irreps_hidden, self.irreps_sh, f"{tp_channels}x0e",
                                                  shared_weights=False)
        radial_in = self.num_basis + self.edge_dim
        self.radial1 = FullyConnectedNet([radial_in, radial_hidden, self.tp1.weight_numel], F.silu)
        self.radial2 = FullyConnectedNet([radial_in, radial_hidden, self.tp2.weight_numel], F.silu)
        self.lin_out = nn.Linear(tp_channels + in_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, pos: Tensor | None = None,
                return_vectors: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``x [N, C]``, ``edge_index [2, E]`` (messages flow source -> target), ``edge_attr [E, edge_dim]``
        (invariant), ``pos [N, 3]`` -> invariant ``[N, out_channels]``; with ``return_vectors`` also the hidden
        equivariant vectors ``[N, hidden_vectors, 3]`` (e3nn's ``1o`` basis)."""
        if pos is None:
            raise ConfigError("conv 'e3nn' needs node positions (batch.pos)")
        src, dst = edge_index
        vec = pos[src] - pos[dst]
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        emb = rbf(vec.norm(dim=-1), self.max_radius, self.num_basis)
        if self.edge_dim:
            if edge_attr is None or edge_attr.size(-1) != self.edge_dim:
                got = None if edge_attr is None else edge_attr.size(-1)
                raise ConfigError(f"conv 'e3nn': expected edge_attr of width {self.edge_dim}, got {got}")
            emb = torch.cat([emb, edge_attr], dim=-1)
        n = x.size(0)
        h = self.lin_in(x)
        hidden = scatter(self.tp1(h[src], sh, self.radial1(emb)), dst, dim=0, dim_size=n, reduce="mean")
        hidden = self.gate(hidden)
        scalars = scatter(self.tp2(hidden[src], sh, self.radial2(emb)), dst, dim=0, dim_size=n, reduce="mean")
        out = self.lin_out(torch.cat([scalars, x], dim=-1))
        if not return_vectors:
            return out
        n_scalar = self.irreps_hidden.count("0e")
        return out, hidden[:, n_scalar:].reshape(n, -1, 3)
