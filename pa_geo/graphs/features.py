"""Vectorised geometric features shared by the residue and atom graph builders (no Python loops over nodes/edges)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_EPS = 1e-6


def rbf(distance: Tensor, d_max: float, num_rbf: int, out: Tensor | None = None) -> Tensor:
    """Gaussian radial basis expansion of distances: ``exp(-((d - c_k) / w)^2)``, the one RBF of pa_geo (graph
    builders' edge features, the predictor's per-scale distance features, the e3nn conv's radial basis).

    ``distance`` [E] float -> [E, num_rbf] float32 on ``distance``'s device; centres ``c_k`` evenly spaced on
    ``[0, d_max]``, width ``w = d_max / num_rbf`` (the GVP / ProteinMPNN convention). ``out``: an [E, num_rbf]
    float32 tensor (or a column slice of a wider one) to fill in place. A ``distance`` that requires grad takes an
    out-of-place path with the same arithmetic (same values), so gradients flow to positions.
    """
    centres = torch.linspace(0.0, float(d_max), num_rbf, dtype=torch.float32, device=distance.device)
    if out is None and distance.requires_grad:
        z = (distance.to(torch.float32).unsqueeze(-1) - centres) * (num_rbf / float(d_max))
        return z.square().clamp(max=60.0).neg().exp()
    if out is None:
        z = distance.to(torch.float32).unsqueeze(-1) - centres
    else:
        z = out
        z.copy_(distance.unsqueeze(-1).expand(-1, num_rbf)).sub_(centres)
    z.mul_(num_rbf / float(d_max)).square_()
    # exp(-z^2) for large z lands in float32 denormals, which are ~100x slower on x86: cap at exp(-60) ~ 1e-26.
    return z.clamp_(max=60.0).neg_().exp_()


def symmetric_edges(parts: list[Tensor], num_nodes: int, symmetric: list[bool] | None = None) -> Tensor:
    """Union of directed edge lists, made symmetric, deduplicated, self loops removed, sorted by (source, target).

    ``parts``: tensors [2, E_k] int64 -> [2, E] int64 (what ``to_undirected`` + ``coalesce`` +
    ``remove_self_loops`` give; done with a numpy sort, ~10x faster than ``torch.sort`` on CPU for int64 keys).
    ``symmetric[k]`` True says part k already holds both directions (its reverse is not added again).
    """
    if not parts:
        return torch.zeros(2, 0, dtype=torch.long)
    n = np.int64(num_nodes)
    chunks = []
    for k, part in enumerate(parts):
        e = part.numpy()
        chunks.append(e[0] * n + e[1])
        if not (symmetric and symmetric[k]):
            chunks.append(e[1] * n + e[0])
    keys = np.concatenate(chunks)
    keys.sort()
    keep = np.empty(len(keys), bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    keep &= keys % (n + 1) != 0  # i * n + i: a self loop
    keys = keys[keep]
    return torch.from_numpy(np.stack([keys // n, keys % n]))


def backbone_frames(backbone: Tensor | np.ndarray) -> Tensor:
    """Local orthonormal frame of every residue from N, CA, C (Gram-Schmidt).

    ``backbone`` [L, 4, 3] (N, CA, C, O; NaN where missing) -> ``R`` [L, 3, 3] float32 whose rows are the frame
    axes: e1 = unit(C - CA), e2 = unit component of (N - CA) orthogonal to e1, e3 = e1 x e2. ``R @ v`` expresses a
    global vector ``v`` in the residue's frame. Rows are all zero where N, CA or C is missing or collinear.
    (numpy inside: on [L, 3] arrays its per-call overhead is a fraction of torch's.)
    """
    bb = backbone.numpy() if isinstance(backbone, Tensor) else np.asarray(backbone)
    bb = bb.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = bb[:, 2] - bb[:, 1]
        v = bb[:, 0] - bb[:, 1]
        u_norm = np.sqrt((u * u).sum(-1, keepdims=True))
        e1 = u / np.maximum(u_norm, _EPS)
        v_perp = v - (v * e1).sum(-1, keepdims=True) * e1
        v_norm = np.sqrt((v_perp * v_perp).sum(-1, keepdims=True))
        e2 = v_perp / np.maximum(v_norm, _EPS)
        e3 = np.stack([e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1], e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
                       e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]], axis=-1)  # np.cross, without its overhead
        frames = np.stack([e1, e2, e3], axis=-2)
    valid = (u_norm[:, 0] > _EPS) & (v_norm[:, 0] > _EPS)  # False for NaN too
    frames[~valid] = 0.0
    return torch.from_numpy(frames)


def residue_positions(backbone: np.ndarray, residue_index: np.ndarray | None = None,
                      atom_coords: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Node position of every residue and whether it is real.

    ``backbone`` [L, 4, 3] -> ``pos`` [L, 3] float32, ``pos_mask`` [L] bool. CA where present; else the centroid
    of the present backbone atoms; else the centroid of the residue's atoms (``residue_index`` [A] into the L
    residues, ``atom_coords`` [A, 3]); else zeros with ``pos_mask`` False.
    """
    bb = np.asarray(backbone, dtype=np.float32)
    present = np.isfinite(bb).all(-1)  # [L, 4]
    pos = np.where(present[:, 1:2], bb[:, 1], 0.0).astype(np.float32)
    mask = present[:, 1].copy()
    todo = ~mask & present.any(1)
    if todo.any():
        count = present[todo].sum(1, keepdims=True)
        pos[todo] = np.where(present[todo][..., None], bb[todo], 0.0).sum(1) / count
        mask |= todo
    if (~mask).any() and residue_index is not None and atom_coords is not None and len(residue_index):
        L = bb.shape[0]
        ok = (residue_index >= 0) & np.isfinite(atom_coords).all(1)
        sums = np.zeros((L, 3), np.float64)
        counts = np.bincount(residue_index[ok], minlength=L)[:L]
        np.add.at(sums, residue_index[ok], atom_coords[ok])
        fill = ~mask & (counts > 0)
        pos[fill] = (sums[fill] / counts[fill, None]).astype(np.float32)
        mask |= fill
    return pos, mask
