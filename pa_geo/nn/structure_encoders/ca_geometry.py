"""CA-trace geometry of a residue batch for the structure encoders, in torch (on the batch's device, in forward).

The CA-only conventions of GVP-CA / ProteinMPNN-CA, so that a CA trace gets angles and a side-chain direction:

* :func:`ca_angle_features` [N, 9]: cos, sin of the CA virtual bond angle at i (CA(i-1), CA(i), CA(i+1)) and of
  the two virtual dihedrals through i (CA(i-2..i+1) and CA(i-1..i+2)), then a mask channel per angle;
* :func:`ca_trace_cb_direction` [N, 3]: unit CA -> pseudo-CB with ProteinMPNN's ideal-CB formula on the CA trace,
  CA(i-1) and CA(i+1) in place of N and C (``b = CA_i - CA_{i-1}``, ``c = CA_{i+1} - CA_i``, ``a = b x c``,
  ``CB = -0.58273431 a + 0.56802827 b - 0.54067466 c + CA``), for residues without N or C.

Neighbours are the residues i +- k of the same protein and chain (``segment``) with a position; an angle that
needs a missing one is zero with mask 0. The same quantities, in numpy at graph-build time, are part of the
residue graph's ``geom`` field (:mod:`pa_geo.graphs.geometry`); these are computed from the batch's ``pos``, so an
encoder needs no stored field and follows any coordinates it is given. Distances, angles and dihedrals are
invariant to rotations and translations; the CB direction rotates with the input.
"""
from __future__ import annotations

import torch
from torch import Tensor

NUM_ANGLE_FEATURES = 9  # width of ca_angle_features
CB_A, CB_B, CB_C = -0.58273431, 0.56802827, -0.54067466


def _unit(v: Tensor) -> Tensor:
    """Unit vectors along the last axis; zero (never NaN) for zero-length or non-finite input."""
    return torch.nan_to_num(v / v.norm(dim=-1, keepdim=True).clamp_min(1e-8), nan=0.0, posinf=0.0, neginf=0.0)


def chain_neighbour(pos: Tensor, has_pos: Tensor, segment: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Position of residue i + k of i's chain ``[N, 3]`` (zeros where absent) and whether it exists ``[N]``."""
    n = pos.shape[0]
    idx = torch.arange(n, device=pos.device) + k
    inside = (idx >= 0) & (idx < n)
    idx = idx.clamp(0, max(n - 1, 0))
    ok = inside & (segment[idx] == segment) & has_pos[idx] & has_pos
    return torch.where(ok[:, None], pos[idx], 0.0), ok


def angle_cos_sin(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """[N, 2] cos, sin of the angle at b of a-b-c (points [N, 3])."""
    u, v = _unit(a - b), _unit(c - b)
    cos = (u * v).sum(-1)
    sin = torch.linalg.cross(u, v).norm(dim=-1)
    return torch.stack([cos, sin], dim=-1)


def dihedral_cos_sin(a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tensor:
    """[N, 2] cos, sin of the dihedral a-b-c-d (IUPAC sign convention; zeros where undefined)."""
    b0, b1, b2 = b - a, c - b, d - c
    n1, n2 = torch.linalg.cross(b0, b1), torch.linalg.cross(b1, b2)
    x = (n1 * n2).sum(-1)
    y = (torch.linalg.cross(n1, n2) * _unit(b1)).sum(-1)
    return _unit(torch.stack([x, y], dim=-1))


def ca_angle_features(pos: Tensor, has_pos: Tensor, segment: Tensor) -> Tensor:
    """[N, 9]: (cos, sin) of the virtual bond angle at i and of the virtual dihedrals CA(i-2..i+1), CA(i-1..i+2),
    then masks of the three (``pos`` [N, 3], ``has_pos`` [N] bool, ``segment`` [N] protein-and-chain id)."""
    near = {k: chain_neighbour(pos, has_pos, segment, k) for k in (-2, -1, 1, 2)}
    (p2, m2), (p1, m1), (n1, o1), (n2, o2) = near[-2], near[-1], near[1], near[2]
    angle_ok, before_ok, after_ok = m1 & o1, m2 & m1 & o1, m1 & o1 & o2
    angle = angle_cos_sin(p1, pos, n1) * angle_ok[:, None]
    before = dihedral_cos_sin(p2, p1, pos, n1) * before_ok[:, None]
    after = dihedral_cos_sin(p1, pos, n1, n2) * after_ok[:, None]
    masks = torch.stack([angle_ok, before_ok, after_ok], dim=-1).to(pos.dtype)
    return torch.cat([angle, before, after, masks], dim=-1)


def ca_trace_cb_direction(pos: Tensor, has_pos: Tensor, segment: Tensor) -> Tensor:
    """[N, 3] unit CA -> pseudo-CB from CA(i-1), CA(i), CA(i+1) (module docstring); zeros where a neighbour is
    missing (chain ends, gaps)."""
    prev, prev_ok = chain_neighbour(pos, has_pos, segment, -1)
    nxt, next_ok = chain_neighbour(pos, has_pos, segment, 1)
    b, c = pos - prev, nxt - pos
    direction = _unit(CB_A * torch.linalg.cross(b, c) + CB_B * b + CB_C * c)
    return direction * (prev_ok & next_ok)[:, None]
