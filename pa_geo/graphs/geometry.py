"""Per-residue invariant geometry that exists on CA traces and full backbones alike, and a CA-trace local frame.

Every feature here is invariant to rotating and translating the structure (distances, angles, dihedrals, counts):

* :func:`ca_frames` - a local frame from CA(i-1), CA(i), CA(i+1), the CA-only convention of ProteinMPNN-CA and
  GVP-CA (in place of the N-CA-C frame where N or C is missing);
* :func:`ca_geometry_table` - per residue, as plain numbers with NaN where undefined: the CA-CA distances inside
  the i-4 .. i+4 window, CA virtual bond angles and virtual dihedrals over the window, the nearest non-local CA
  distances, CA neighbour counts, and backbone phi / psi / omega where N, CA and C exist (layout
  :data:`TABLE_LAYOUT`); the input of the gradient-boosted-trees baseline (trees split on raw values and route NaN
  themselves);
* :func:`residue_geometry` - the ``geom`` node field of a residue graph ([L, :data:`GEOM_DIM`], layout
  :data:`GEOM_LAYOUT`): the same values encoded for a neural network (RBFs of the CA-CA distances to i+-1..4,
  scaled distances and counts, cos / sin of angles). A value that is undefined (chain end, missing CA, no N / C) is
  zero and its mask channel says so, so "missing" is never mistaken for a real zero. A model given ``geom`` sees
  everything the trees see.

Neighbours along the chain are sequence neighbours of the same chain (index i+k with the same ``chain_index``),
whatever the distance between them: a chain break then shows as a long virtual bond, which the distance channels
carry. Virtual bond angles and dihedrals follow the CA-trace literature (e.g. PCASSO, Law et al. 2014; Levitt
1976 for the CA virtual-bond description of secondary structure).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from pa_geo.graphs.features import backbone_frames

WINDOW = 4  # features read the residues i-4 .. i+4 of i's chain
WINDOW_MAX_GAP = 5  # pairwise CA distances inside the window between residues at most 5 apart (30 pairs)
WINDOW_PAIRS: tuple[tuple[int, int], ...] = tuple((a, a + g) for g in range(1, WINDOW_MAX_GAP + 1)
                                                 for a in range(-WINDOW, WINDOW + 1 - g))
CA_OFFSETS: tuple[int, ...] = (-4, -3, -2, -1, 1, 2, 3, 4)
ANGLE_CENTRES: tuple[int, ...] = tuple(range(-3, 4))  # virtual bond angle at CA(i+j): CA(i+j-1), CA(i+j), CA(i+j+1)
DIHEDRAL_STARTS: tuple[int, ...] = tuple(range(-3, 3))  # virtual dihedral CA(i+j-1), CA(i+j), CA(i+j+1), CA(i+j+2)
DIST_RBF_CENTRES = np.linspace(3.0, 17.0, 8)  # CA(i)-CA(i+k): 3.8 A (k=1) .. ~13 A (k=4, strand)
DIST_RBF_WIDTH = 1.75
COUNT_RADII: tuple[float, ...] = (6.0, 8.0, 10.0, 12.0)
COUNT_SCALE = 20.0  # counts / 20: a buried residue has ~25-30 CA within 12 A
NONLOCAL_K = 3  # nearest CA with |i - j| > NONLOCAL_MIN_SEP (or another chain)
NONLOCAL_MIN_SEP = 3
NONLOCAL_MAX = 20.0  # nearest non-local distances are clipped here (A) and divided by 10
_EPS = 1e-6


def _layout(sizes: list[tuple[str, int]]) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in sizes:
        out[name] = slice(start, start + size)
        start += size
    return out


TABLE_LAYOUT: dict[str, slice] = _layout([
    ("window_dist", len(WINDOW_PAIRS)), ("angle", len(ANGLE_CENTRES)), ("dihedral", 2 * len(DIHEDRAL_STARTS)),
    ("nonlocal", NONLOCAL_K), ("counts", len(COUNT_RADII)), ("backbone", 6)])
"""Column slices of :func:`ca_geometry_table` (raw values, NaN where undefined).

``window_dist`` [30] CA-CA distance (A) of every pair :data:`WINDOW_PAIRS` (offsets from i, at most 5 apart)
``angle``       [7]  virtual bond angle (radians) at CA(i-3) .. CA(i+3)
``dihedral``    [12] cos, sin of the virtual dihedrals starting at CA(i-4) .. CA(i+1) (inside i-4 .. i+4)
``nonlocal``    [3]  distances (A) to the three nearest CA with |i - j| > 3 or in another chain
``counts``      [4]  CA neighbours within 6 / 8 / 10 / 12 A, self excluded
``backbone``    [6]  cos, sin of phi, psi, omega (NaN on CA traces)
"""

GEOM_LAYOUT: dict[str, slice] = _layout([
    ("ca_dist_rbf", len(CA_OFFSETS) * len(DIST_RBF_CENTRES)), ("window_dist", len(WINDOW_PAIRS)),
    ("ca_present", len(CA_OFFSETS)), ("angle", 2 * len(ANGLE_CENTRES)), ("dihedral", 2 * len(DIHEDRAL_STARTS)),
    ("angle_present", len(ANGLE_CENTRES) + len(DIHEDRAL_STARTS)), ("backbone", 6), ("backbone_present", 3),
    ("counts", len(COUNT_RADII)), ("nonlocal", NONLOCAL_K), ("nonlocal_present", NONLOCAL_K)])
"""Column slices of the ``geom`` node field (:func:`residue_geometry`), the table encoded for a neural network
(zeros plus a mask channel where undefined).

``ca_dist_rbf``   [64] 8 Gaussian RBFs (centres 3..17 A, width 1.75 A) of CA(i)-CA(i+k), k = -4..-1, 1..4
``window_dist``   [30] the table's window distances / 10 A
``ca_present``    [8]  1 where residue i+k (k = -4..-1, 1..4) exists in i's chain and has a CA
``angle``         [14] cos, sin of the virtual bond angles at CA(i-3) .. CA(i+3)
``dihedral``      [12] cos, sin of the virtual dihedrals starting at CA(i-4) .. CA(i+1)
``angle_present`` [13] masks of those 7 angles and 6 dihedrals
``backbone``      [6]  cos, sin of phi, psi, omega (N, CA, C of i and its chain neighbours)
``backbone_present`` [3] masks of phi, psi, omega
``counts``        [4]  the table's counts / 20
``nonlocal``      [3]  min(nearest non-local distances, 20 A) / 10 A
``nonlocal_present`` [3] masks of those (fewer candidates than three)
"""
GEOM_DIM: int = max(v.stop for v in GEOM_LAYOUT.values())


def _shift(x: np.ndarray, k: int, fill: float = np.nan) -> np.ndarray:
    """``out[i] = x[i + k]`` (``fill`` outside ``0..L-1``); x [L, ...]."""
    out = np.full_like(x, fill)
    L = x.shape[0]
    if abs(k) >= L:
        return out
    if k >= 0:
        out[: L - k] = x[k:]
    else:
        out[-k:] = x[: L + k]
    return out


def _chain_neighbour(chain_index: np.ndarray, k: int) -> np.ndarray:
    """``[L]`` bool: residue i+k exists and is in i's chain."""
    L = len(chain_index)
    idx = np.arange(L) + k
    ok = (idx >= 0) & (idx < L)
    same = np.zeros(L, bool)
    same[ok] = chain_index[idx[ok]] == chain_index[ok]
    return same


def _windowed(points: np.ndarray, present: np.ndarray, chain_index: np.ndarray,
              offsets: range | tuple[int, ...]) -> dict[int, np.ndarray]:
    """``{k: [L, 3]}`` the point of residue i+k along i's chain, NaN where it does not exist or is missing."""
    out = {}
    for k in offsets:
        p = _shift(points, k)
        ok = _chain_neighbour(chain_index, k) & _shift(present.astype(np.float32), k, 0.0).astype(bool)
        p[~ok] = np.nan
        out[k] = p
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.sqrt((v * v).sum(-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.where(n > _EPS, n, np.nan)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b of a-b-c in radians, ``[L]`` (NaN where any point is NaN)."""
    cos = (_unit(a - b) * _unit(c - b)).sum(-1)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def dihedral(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Dihedral angle of a-b-c-d in radians (IUPAC sign convention), points [L, 3] -> [L] (NaN where undefined)."""
    b0, b1, b2 = b - a, c - b, d - c
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    x, y = (n1 * n2).sum(-1), (np.cross(n1, n2) * _unit(b1)).sum(-1)
    with np.errstate(invalid="ignore"):
        out = np.arctan2(y, x)
    out[~(np.isfinite(x) & np.isfinite(y)) | ((np.abs(x) < _EPS) & (np.abs(y) < _EPS))] = np.nan
    return out


def _ca_window(ca: np.ndarray, ca_mask: np.ndarray, chain_index: np.ndarray,
               reach: int) -> dict[int, np.ndarray]:
    return _windowed(np.where(ca_mask[:, None], ca, np.nan).astype(np.float64), ca_mask, chain_index,
                     range(-reach, reach + 1))


def backbone_dihedrals(backbone: np.ndarray, chain_index: np.ndarray) -> np.ndarray:
    """phi, psi, omega of every residue in radians, ``[L, 3]`` (NaN where an atom or the chain neighbour is
    missing). phi_i = C(i-1)-N-CA-C, psi_i = N-CA-C-N(i+1), omega_i = CA-C-N(i+1)-CA(i+1)."""
    bb = np.asarray(backbone, np.float64)
    n, ca, c = bb[:, 0], bb[:, 1], bb[:, 2]
    prev_ok, next_ok = _chain_neighbour(chain_index, -1), _chain_neighbour(chain_index, 1)
    c_prev = np.where(prev_ok[:, None], _shift(c, -1), np.nan)
    n_next = np.where(next_ok[:, None], _shift(n, 1), np.nan)
    ca_next = np.where(next_ok[:, None], _shift(ca, 1), np.nan)
    return np.stack([dihedral(c_prev, n, ca, c), dihedral(n, ca, c, n_next), dihedral(ca, c, n_next, ca_next)], -1)


def _nonlocal_and_counts(ca: np.ndarray, ca_mask: np.ndarray, chain_index: np.ndarray) -> tuple[np.ndarray, ...]:
    """Neighbour counts ``[L, 4]`` and nearest non-local distances ``[L, 3]`` (NaN where fewer candidates)."""
    L = len(ca)
    counts = np.zeros((L, len(COUNT_RADII)), np.float64)
    near = np.full((L, NONLOCAL_K), np.nan)
    idx = np.flatnonzero(ca_mask)
    if len(idx) < 2:
        return counts, near
    pts = ca[idx].astype(np.float64)
    tree = cKDTree(pts)
    for r, radius in enumerate(COUNT_RADII):
        counts[idx, r] = tree.query_ball_point(pts, radius, return_length=True) - 1
    k = min(len(idx), 2 * NONLOCAL_MIN_SEP + 2 + 2 * NONLOCAL_K)
    while True:
        dist, nb = tree.query(pts, k=k)
        dist, nb = dist.reshape(len(idx), k), nb.reshape(len(idx), k)
        j = idx[np.minimum(nb, len(idx) - 1)]
        i = idx[:, None]
        far = (chain_index[j] != chain_index[i]) | (np.abs(j - i) > NONLOCAL_MIN_SEP)
        far &= nb < len(idx)
        enough = far.sum(1) >= NONLOCAL_K
        if enough.all() or k >= len(idx):
            break
        k = min(len(idx), 2 * k)
    masked = np.where(far, dist, np.inf)
    masked.sort(axis=1)
    best = masked[:, :NONLOCAL_K]
    best[~np.isfinite(best)] = np.nan
    near[idx, : best.shape[1]] = best
    return counts, near


def ca_geometry_table(backbone: np.ndarray, ca: np.ndarray, ca_mask: np.ndarray,
                      chain_index: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Hand-made per-residue geometry for classical models: ``([L, F] float32, F column names)``, layout
    :data:`TABLE_LAYOUT`, NaN where a value is undefined (chain end, missing atom, no N / C).

    Args:
        backbone: ``[L, 4, 3]`` N, CA, C, O (NaN where missing); only phi / psi / omega read N and C.
        ca: ``[L, 3]`` CA positions (a residue graph's ``pos``); ``ca_mask`` ``[L]`` which are real.
        chain_index: ``[L]`` chain of each residue; residues are in chain order.
    """
    chain_index = np.asarray(chain_index)
    ca_mask = np.asarray(ca_mask, bool)
    w = _ca_window(ca, ca_mask, chain_index, WINDOW)
    cols, names = [], []
    for a, b in WINDOW_PAIRS:
        cols.append(np.sqrt(((w[b] - w[a]) ** 2).sum(-1)))
        names.append(f"d[{a:+d},{b:+d}]")
    for j in ANGLE_CENTRES:
        cols.append(_angle(w[j - 1], w[j], w[j + 1]))
        names.append(f"angle[{j:+d}]")
    for j in DIHEDRAL_STARTS:
        t = dihedral(w[j - 1], w[j], w[j + 1], w[j + 2])
        cols += [np.cos(t), np.sin(t)]
        names += [f"cos_dihedral[{j - 1:+d}]", f"sin_dihedral[{j - 1:+d}]"]
    counts, near = _nonlocal_and_counts(ca, ca_mask, chain_index)
    counts[~ca_mask] = np.nan
    cols += list(near.T) + list(counts.T)
    names += [f"nonlocal_{k + 1}" for k in range(NONLOCAL_K)] + [f"count_{int(r)}A" for r in COUNT_RADII]
    tors = backbone_dihedrals(backbone, chain_index)
    for t, name in zip(tors.T, ("phi", "psi", "omega")):
        cols += [np.cos(t), np.sin(t)]
        names += [f"cos_{name}", f"sin_{name}"]
    table = np.stack(cols, -1).astype(np.float32) if cols and len(ca) else np.zeros((len(ca), len(names)), np.float32)
    return table, names


def residue_geometry(backbone: np.ndarray, ca: np.ndarray, ca_mask: np.ndarray,
                     chain_index: np.ndarray) -> np.ndarray:
    """The ``geom`` field of a residue graph: ``[L, GEOM_DIM]`` float32 (layout :data:`GEOM_LAYOUT`), every value
    of :func:`ca_geometry_table` encoded for a neural network (RBFs, scaled distances and counts, cos / sin), zeros
    plus a mask channel where undefined. Same arguments as :func:`ca_geometry_table`."""
    L = len(ca)
    out = np.zeros((L, GEOM_DIM), np.float32)
    if L == 0:
        return out
    table, _ = ca_geometry_table(backbone, ca, ca_mask, chain_index)
    t, g = TABLE_LAYOUT, GEOM_LAYOUT
    window = table[:, t["window_dist"]]
    centred = np.stack([window[:, WINDOW_PAIRS.index((min(0, k), max(0, k)))] for k in CA_OFFSETS], -1)
    present = np.isfinite(centred)
    d = np.nan_to_num(centred)
    rbf = np.exp(-(((d[..., None] - DIST_RBF_CENTRES) / DIST_RBF_WIDTH) ** 2)) * present[..., None]
    out[:, g["ca_dist_rbf"]] = rbf.reshape(L, -1)
    out[:, g["window_dist"]] = np.nan_to_num(window) / 10.0
    out[:, g["ca_present"]] = present
    angles = table[:, t["angle"]]
    out[:, g["angle"]] = np.nan_to_num(np.stack([np.cos(angles), np.sin(angles)], -1).reshape(L, -1))
    dihedrals = table[:, t["dihedral"]]
    out[:, g["dihedral"]] = np.nan_to_num(dihedrals)
    out[:, g["angle_present"]] = np.isfinite(np.concatenate([angles, dihedrals[:, ::2]], -1))
    tors = table[:, t["backbone"]]
    out[:, g["backbone"]] = np.nan_to_num(tors)
    out[:, g["backbone_present"]] = np.isfinite(tors[:, ::2])
    out[:, g["counts"]] = np.nan_to_num(table[:, t["counts"]]) / COUNT_SCALE
    near = table[:, t["nonlocal"]]
    out[:, g["nonlocal"]] = np.where(np.isfinite(near), np.minimum(near, NONLOCAL_MAX), 0.0) / 10.0
    out[:, g["nonlocal_present"]] = np.isfinite(near)
    return out


def ca_frames(ca: np.ndarray, ca_mask: np.ndarray, chain_index: np.ndarray) -> np.ndarray:
    """CA-trace local frames ``[L, 3, 3]`` float32 (rows = axes), the CA-only convention of ProteinMPNN-CA and
    GVP-CA: the N-CA-C frame of :func:`pa_geo.graphs.features.backbone_frames` with CA(i-1) in place of N and
    CA(i+1) in place of C (e1 towards CA(i+1), e2 the part of CA(i-1) - CA(i) orthogonal to e1, e3 = e1 x e2).

    A chain end (or a residue next to a missing CA) takes the frame of the nearest residue of its chain that has
    one, so only chains with fewer than three CA have zero rows.
    """
    L = len(ca)
    chain_index = np.asarray(chain_index)
    w = _ca_window(ca, np.asarray(ca_mask, bool), chain_index, 1)
    pseudo = np.full((L, 4, 3), np.nan, np.float64)
    pseudo[:, 0], pseudo[:, 1], pseudo[:, 2] = w[-1], w[0], w[1]
    frames = backbone_frames(pseudo.astype(np.float32)).numpy()
    ok = np.abs(frames).sum((1, 2)) > 0
    if ok.all() or not ok.any():
        return frames
    # nearest residue of the same chain with a frame (forward / backward fill inside each chain)
    pos = np.arange(L)
    before = np.where(ok, pos, -1)
    np.maximum.accumulate(before, out=before)
    after = np.where(ok, pos, L)
    after = np.minimum.accumulate(after[::-1])[::-1]
    for i in np.flatnonzero(~ok):
        cands = [j for j in (before[i], after[i]) if 0 <= j < L and chain_index[j] == chain_index[i]]
        if cands:
            frames[i] = frames[min(cands, key=lambda j: abs(j - i))]
    return frames
