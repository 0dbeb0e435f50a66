"""Per-residue invariant geometry that exists on CA traces and full backbones alike, and a CA-trace local frame.

Every feature here is invariant to rotating and translating the structure (distances, angles, dihedrals, counts):

* :func:`ca_frames` - a local frame from CA(i-1), CA(i), CA(i+1), the CA-only convention of ProteinMPNN-CA and
  GVP-CA (in place of the N-CA-C frame where N or C is missing);
* :func:`residue_geometry` - the ``geom`` node field of a residue graph ([L, :data:`GEOM_DIM`], layout
  :data:`GEOM_LAYOUT`): RBFs of the CA-CA distances to i+-1..4, CA virtual bond angles and virtual dihedrals
  around i, backbone phi / psi / omega where N, CA and C exist (with a mask), CA neighbour counts and the nearest
  non-local CA distances. A feature that is undefined (chain end, missing CA, no N / C) is zero and its mask
  channel says so, so "missing" is never mistaken for a real zero;
* :func:`ca_geometry_table` - the same quantities as plain numbers with NaN where undefined, the input of the
  gradient-boosted-trees baseline (trees split on raw values and route NaN themselves).

Neighbours along the chain are sequence neighbours of the same chain (index i+k with the same ``chain_index``),
whatever the distance between them: a chain break then shows as a long virtual bond, which the distance channels
carry. Virtual bond angles and dihedrals follow the CA-trace literature (e.g. PCASSO, Law et al. 2014; Levitt
1976 for the CA virtual-bond description of secondary structure).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from pa_geo.graphs.features import backbone_frames

CA_OFFSETS: tuple[int, ...] = (-4, -3, -2, -1, 1, 2, 3, 4)
DIST_RBF_CENTRES = np.linspace(3.0, 17.0, 8, dtype=np.float32)  # CA-CA(i+k): 3.8 A (k=1) .. ~13 A (k=4, strand)
DIST_RBF_WIDTH = 1.75
ANGLE_CENTRES: tuple[int, ...] = (-1, 0, 1)  # virtual bond angle at CA(i+j): CA(i+j-1), CA(i+j), CA(i+j+1)
DIHEDRAL_STARTS: tuple[int, ...] = (-2, -1, 0, 1)  # virtual dihedral CA(i+j-1), CA(i+j), CA(i+j+1), CA(i+j+2)
COUNT_RADII: tuple[float, ...] = (6.0, 8.0, 10.0, 12.0)
COUNT_SCALE = 20.0  # counts / 20: a buried residue has ~25-30 CA within 12 A
NONLOCAL_K = 3  # nearest CA with |i - j| > NONLOCAL_MIN_SEP (or another chain)
NONLOCAL_MIN_SEP = 3
NONLOCAL_MAX = 20.0  # nearest non-local distances are clipped here (A) and divided by 10
_EPS = 1e-6


def geom_layout() -> dict[str, slice]:
    """Column slices of the ``geom`` node field (:func:`residue_geometry`).

    ``ca_dist_rbf``   [64] 8 RBFs of CA(i)-CA(i+k), k = -4..-1, 1..4 (8 per k, centres 3..17 A)
    ``ca_dist``       [8]  the same distances / 10 A
    ``ca_present``    [8]  1 where residue i+k exists in the chain and both CA are present
    ``angle``         [6]  cos, sin of the virtual bond angle at CA(i-1), CA(i), CA(i+1)
    ``dihedral``      [8]  cos, sin of the virtual dihedrals starting at CA(i-2), CA(i-1), CA(i), CA(i+1)
    ``angle_present`` [7]  masks of the 3 angles and 4 dihedrals
    ``backbone``      [6]  cos, sin of phi, psi, omega (N, CA, C of i and its chain neighbours)
    ``backbone_present`` [3] masks of phi, psi, omega
    ``counts``        [4]  CA neighbours within 6 / 8 / 10 / 12 A (self excluded) / 20
    ``nonlocal``      [3]  nearest three CA with |i - j| > 3 or in another chain, min(d, 20) / 10
    ``nonlocal_present`` [3] masks of those (fewer candidates than three)
    """
    sizes = [("ca_dist_rbf", 8 * len(DIST_RBF_CENTRES)), ("ca_dist", 8), ("ca_present", 8), ("angle", 6),
             ("dihedral", 8), ("angle_present", 7), ("backbone", 6), ("backbone_present", 3), ("counts", 4),
             ("nonlocal", NONLOCAL_K), ("nonlocal_present", NONLOCAL_K)]
    out, start = {}, 0
    for name, size in sizes:
        out[name] = slice(start, start + size)
        start += size
    return out


GEOM_LAYOUT: dict[str, slice] = geom_layout()
GEOM_DIM: int = max(s.stop for s in GEOM_LAYOUT.values())


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


def residue_geometry(backbone: np.ndarray, ca: np.ndarray, ca_mask: np.ndarray,
                     chain_index: np.ndarray) -> np.ndarray:
    """The ``geom`` field of a residue graph: ``[L, GEOM_DIM]`` float32 (layout :data:`GEOM_LAYOUT`).

    Args:
        backbone: ``[L, 4, 3]`` N, CA, C, O (NaN where missing); only phi / psi / omega read N and C.
        ca: ``[L, 3]`` CA positions (the residue graph's ``pos``); ``ca_mask`` ``[L]`` which are real.
        chain_index: ``[L]`` chain of each residue; residues are in chain order.
    """
    L = len(ca)
    out = np.zeros((L, GEOM_DIM), np.float32)
    if L == 0:
        return out
    chain_index = np.asarray(chain_index)
    w = _ca_window(ca, np.asarray(ca_mask, bool), chain_index, 4)
    centre = w[0]
    dists = np.stack([np.sqrt(((w[k] - centre) ** 2).sum(-1)) for k in CA_OFFSETS], -1)  # [L, 8]
    present = np.isfinite(dists)
    d = np.where(present, dists, 0.0)
    rbf = np.exp(-(((d[..., None] - DIST_RBF_CENTRES) / DIST_RBF_WIDTH) ** 2)) * present[..., None]
    lay = GEOM_LAYOUT
    out[:, lay["ca_dist_rbf"]] = rbf.reshape(L, -1)
    out[:, lay["ca_dist"]] = d / 10.0
    out[:, lay["ca_present"]] = present
    angles = np.stack([_angle(w[j - 1], w[j], w[j + 1]) for j in ANGLE_CENTRES], -1)
    dihedrals = np.stack([dihedral(w[j - 1], w[j], w[j + 1], w[j + 2]) for j in DIHEDRAL_STARTS], -1)
    out[:, lay["angle"]] = _cos_sin(angles)
    out[:, lay["dihedral"]] = _cos_sin(dihedrals)
    out[:, lay["angle_present"]] = np.isfinite(np.concatenate([angles, dihedrals], -1))
    tors = backbone_dihedrals(backbone, chain_index)
    out[:, lay["backbone"]] = _cos_sin(tors)
    out[:, lay["backbone_present"]] = np.isfinite(tors)
    counts, near = _nonlocal_and_counts(ca, np.asarray(ca_mask, bool), chain_index)
    out[:, lay["counts"]] = counts / COUNT_SCALE
    out[:, lay["nonlocal"]] = np.where(np.isfinite(near), np.minimum(near, NONLOCAL_MAX), 0.0) / 10.0
    out[:, lay["nonlocal_present"]] = np.isfinite(near)
    return out


def _cos_sin(a: np.ndarray) -> np.ndarray:
    """``[L, n]`` angles -> ``[L, 2n]`` (cos a_1, sin a_1, cos a_2, ...), zeros where NaN."""
    cs = np.stack([np.cos(a), np.sin(a)], -1).reshape(a.shape[0], -1)
    return np.nan_to_num(cs, nan=0.0)


TABLE_WINDOW = 4  # trees: pairwise CA distances among residues i-4..i+4 ...
TABLE_MAX_GAP = 5  # ... at most 5 apart in sequence
TABLE_ANGLE_REACH = 3  # virtual bond angles at i-3..i+3, virtual dihedrals inside i-4..i+4


def ca_geometry_table(backbone: np.ndarray, ca: np.ndarray, ca_mask: np.ndarray,
                      chain_index: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Hand-made per-residue geometry for classical models: ``([L, F] float32, F column names)``, NaN where a
    value is undefined (chain end, missing atom).

    Columns: CA-CA distances between the positions of the i-4..i+4 window at most 5 apart (30); CA virtual bond
    angles at i-3..i+3 (7, radians); CA virtual dihedrals inside the window (6, cos and sin); the three nearest
    non-local CA distances (|i - j| > 3); CA neighbour counts within 6 / 8 / 10 / 12 A; backbone phi / psi / omega
    (cos and sin; NaN on CA traces). Same inputs as :func:`residue_geometry`.
    """
    chain_index = np.asarray(chain_index)
    ca_mask = np.asarray(ca_mask, bool)
    w = _ca_window(ca, ca_mask, chain_index, TABLE_WINDOW)
    cols, names = [], []
    for gap in range(1, TABLE_MAX_GAP + 1):
        for a in range(-TABLE_WINDOW, TABLE_WINDOW + 1 - gap):
            cols.append(np.sqrt(((w[a + gap] - w[a]) ** 2).sum(-1)))
            names.append(f"d[{a:+d},{a + gap:+d}]")
    for j in range(-TABLE_ANGLE_REACH, TABLE_ANGLE_REACH + 1):
        cols.append(_angle(w[j - 1], w[j], w[j + 1]))
        names.append(f"angle[{j:+d}]")
    for j in range(-TABLE_ANGLE_REACH, TABLE_ANGLE_REACH):
        t = dihedral(w[j - 1], w[j], w[j + 1], w[j + 2])
        cols += [np.cos(t), np.sin(t)]
        names += [f"cos_dihedral[{j:+d}]", f"sin_dihedral[{j:+d}]"]
    counts, near = _nonlocal_and_counts(ca, ca_mask, chain_index)
    counts[~ca_mask] = np.nan
    cols += list(near.T) + list(counts.T)
    names += [f"nonlocal_{k + 1}" for k in range(NONLOCAL_K)] + [f"count_{int(r)}A" for r in COUNT_RADII]
    tors = backbone_dihedrals(backbone, chain_index)
    for t, name in zip(tors.T, ("phi", "psi", "omega")):
        cols += [np.cos(t), np.sin(t)]
        names += [f"cos_{name}", f"sin_{name}"]
    return np.stack(cols, -1).astype(np.float32), names


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
