"""GVP-GNN input features of a residue batch, after drorlab/gvp-pytorch ``gvp/data.py`` ``ProteinGraphDataset``
(``_dihedrals``, ``_orientations``, ``_sidechains``, ``_positional_embeddings``, ``_rbf``; themselves from Ingraham
et al. 2019's neurips19-graph-protein-design) and Jing et al. 2021 (ICLR), sec. 3:

* node scalars [N, 6]: cos and sin of the backbone dihedrals phi, psi, omega;
* node vectors [N, 3 (xyz), 3 (channels)]: unit CA(i) -> CA(i+1), unit CA(i) -> CA(i-1), and the imputed CA -> CB direction
  ``-sqrt(1/3) * unit(c + n) - sqrt(2/3) * unit(c x n)`` with ``c = unit(C - CA)``, ``n = unit(N - CA)``;
* edges: the ``k = 30`` nearest CA of every residue (source = neighbour j, target = i); edge scalars [E, 32] = 16
  Gaussian RBFs of the CA-CA distance on [0, 20] A ++ 16-dim sinusoidal encoding of the index offset ``j - i``;
  edge vector [E, 3, 1] = unit(x_j - x_i). Vectors are channels-last, as :mod:`.gvp_layers` stores them.

Differences, all where gvp-pytorch has no notion of them: dihedrals and CA neighbours never reach across two
chains or two proteins of a batch (features that would are zeros, as is any feature needing a missing atom; gvp-
pytorch's zero padding at the ends puts cos = 1 there), kNN runs only among residues with ``pos_mask`` (a residue
without coordinates gets no edges), and the offset encoding is zeros between chains.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from pa_geo.graphs.features import rbf

RBF_MAX = 20.0


def _unit(v: Tensor) -> Tensor:
    """Unit vectors along the last axis; zero (never NaN) for zero-length or non-finite input."""
    return torch.nan_to_num(v / v.norm(dim=-1, keepdim=True).clamp_min(1e-8), nan=0.0, posinf=0.0, neginf=0.0)


def _same_as_next(segment: Tensor) -> Tensor:
    """[N] bool: residue i + 1 exists and is in the same protein and chain as i."""
    out = torch.zeros_like(segment, dtype=torch.bool)
    out[:-1] = segment[1:] == segment[:-1]
    return out


def dihedral_features(backbone: Tensor, segment: Tensor) -> Tensor:
    """``backbone`` [N, 4, 3] (N, CA, C, O; NaN missing), ``segment`` [N] -> [N, 6] ``(cos phi, cos psi, cos omega,
    sin phi, sin psi, sin omega)``; zeros where the four atoms are not all present in one chain."""
    n = backbone.shape[0]
    atoms = backbone[:, :3].reshape(3 * n, 3)  # N0 CA0 C0 N1 CA1 C1 ...
    b = atoms[1:] - atoms[:-1]  # bond vectors
    b1, b2, b3 = b[:-2], b[1:-1], b[2:]
    n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
    x = (n1 * n2).sum(-1)
    y = (torch.linalg.cross(n1, n2) * _unit(b2)).sum(-1)
    cos_sin = _unit(torch.stack([x, y], dim=-1))  # dihedral t uses atoms t .. t+3 -> [3n - 3, 2]
    # atom-quadruple t = 3i - 1 is phi_i, 3i is psi_i, 3i + 1 is omega_i: pad one slot before, two after
    padded = torch.cat([cos_sin.new_zeros(1, 2), cos_sin, cos_sin.new_zeros(2, 2)]).view(n, 3, 2)
    nxt = _same_as_next(segment)
    prev = torch.zeros_like(nxt)
    prev[1:] = nxt[:-1]
    valid = torch.stack([prev, nxt, nxt], dim=-1).unsqueeze(-1)
    feats = padded * valid
    return torch.cat([feats[..., 0], feats[..., 1]], dim=-1)


def orientation_vectors(pos: Tensor, pos_mask: Tensor, segment: Tensor) -> Tensor:
    """[N, 3, 2]: unit CA(i) -> CA(i+1) and unit CA(i) -> CA(i-1) (zeros at chain ends / missing positions)."""
    nxt = _same_as_next(segment)
    nxt[:-1] &= pos_mask[:-1] & pos_mask[1:]
    forward = torch.zeros_like(pos)
    forward[:-1] = _unit(pos[1:] - pos[:-1]) * nxt[:-1, None]
    backward = torch.zeros_like(pos)
    backward[1:] = -forward[:-1]
    return torch.stack([forward, backward], dim=-1)


def sidechain_vector(backbone: Tensor) -> Tensor:
    """[N, 3] imputed CA -> CB unit direction from N, CA, C (zeros where one is missing)."""
    origin = backbone[:, 1]
    c, n = _unit(backbone[:, 2] - origin), _unit(backbone[:, 0] - origin)
    bisector, perp = _unit(c + n), _unit(torch.linalg.cross(c, n))
    present = torch.isfinite(backbone[:, :3]).all(-1).all(-1, keepdim=True)
    return (-bisector * math.sqrt(1.0 / 3.0) - perp * math.sqrt(2.0 / 3.0)) * present


def offset_encoding(offset: Tensor, num_embeddings: int = 16) -> Tensor:
    """``offset`` [E] int (j - i) -> [E, num_embeddings] ``(cos(offset * w_k), sin(offset * w_k))`` with
    ``w_k = 10000 ** (-2k / num_embeddings)``, k = 0 .. num_embeddings / 2 - 1 (transformer encoding)."""
    freq = torch.exp(torch.arange(0, num_embeddings, 2, dtype=torch.float32, device=offset.device)
                     * -(math.log(10000.0) / num_embeddings))
    angles = offset.float().unsqueeze(-1) * freq
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def edge_features(pos: Tensor, edge_index: Tensor, segment: Tensor, num_rbf: int = 16,
                  num_positional: int = 16) -> tuple[Tensor, Tensor]:
    """Edge scalars [E, num_rbf + num_positional] (RBF of |x_j - x_i| ++ offset encoding, zeros across chains) and
    edge vectors [E, 3, 1] unit(x_j - x_i) for ``edge_index`` [2, E] (row 0 = j, row 1 = i)."""
    src, dst = edge_index
    diff = pos[src] - pos[dst]
    same_chain = (segment[src] == segment[dst]).float().unsqueeze(-1)
    scalars = torch.cat([rbf(diff.norm(dim=-1), RBF_MAX, num_rbf),
                         offset_encoding(src - dst, num_positional) * same_chain], dim=-1)
    return scalars, _unit(diff).unsqueeze(-1)
