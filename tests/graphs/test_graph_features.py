"""The vectorised helpers behind both graph builders."""
from __future__ import annotations

import numpy as np
import torch

from pa_geo.graphs.features import backbone_frames, rbf, residue_positions, symmetric_edges


def test_symmetric_edges_union_dedup_and_order():
    a = torch.tensor([[0, 1, 2, 2, 3], [1, 0, 2, 0, 1]])  # a self loop, a duplicate pair, one-way edges
    b = torch.tensor([[3], [1]])
    ei = symmetric_edges([a, b], 4)
    assert ei.tolist() == [[0, 0, 1, 1, 2, 3], [1, 2, 0, 3, 0, 1]]
    # a part declared symmetric is not mirrored again
    assert symmetric_edges([torch.tensor([[0, 1], [1, 0]])], 2, [True]).tolist() == [[0, 1], [1, 0]]
    assert symmetric_edges([], 3).shape == (2, 0)


def test_backbone_frames_orthonormal_right_handed_and_zero_when_undefined(sdb_proteins):
    bb = sdb_proteins[0].backbone.copy()
    bb[5, 0] = np.nan
    bb[6, 2] = bb[6, 1]  # C on CA: degenerate
    R = backbone_frames(torch.from_numpy(bb)).double()
    ok = torch.ones(len(bb), dtype=torch.bool)
    ok[[5, 6]] = False
    assert torch.allclose(R[ok] @ R[ok].transpose(1, 2), torch.eye(3, dtype=torch.double).expand(int(ok.sum()), 3, 3),
                          atol=1e-5)
    assert torch.allclose(torch.linalg.det(R[ok]), torch.ones(int(ok.sum()), dtype=torch.double), atol=1e-5)
    assert torch.all(R[~ok] == 0)
    # e1 points from CA to C
    e1 = torch.from_numpy(bb[0, 2] - bb[0, 1]).double()
    assert torch.allclose(R[0, 0], e1 / e1.norm(), atol=1e-6)


def test_rbf_peaks_at_centres_and_never_denormal():
    d = torch.tensor([0.0, 5.0, 10.0, 1e4])
    out = rbf(d, 10.0, 11)
    assert torch.allclose(out[[0, 1, 2], [0, 5, 10]], torch.ones(3))
    assert torch.all(out[3] > 0) and torch.all(out[3] < 1e-20)
    buf = torch.zeros(4, 14)
    rbf(d, 10.0, 11, out=buf[:, :11])
    assert torch.equal(buf[:, :11], out) and torch.all(buf[:, 11:] == 0)


def test_residue_positions_fallbacks():
    bb = np.full((3, 4, 3), np.nan, np.float32)
    bb[0] = np.arange(12, dtype=np.float32).reshape(4, 3)
    bb[1, [0, 2]] = [[0, 0, 0], [2, 2, 2]]
    coords = np.array([[9, 9, 9], [1, 1, 1]], np.float32)
    pos, mask = residue_positions(bb, np.array([2, -1]), coords)
    assert mask.tolist() == [True, True, True]
    assert np.allclose(pos, [[3, 4, 5], [1, 1, 1], [9, 9, 9]])
    pos, mask = residue_positions(bb)
    assert mask.tolist() == [True, True, False] and np.all(pos[2] == 0)
