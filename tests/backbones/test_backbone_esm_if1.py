"""esm_if1 on a tiny GVP-Transformer checkpoint: batched encoder == fair-esm's per-chain / complex helpers, run with
the pose-invariant featurisation (fair_esm_pose_invariant); that featurisation pads exactly the features that read
a missing atom."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from tests.helpers.esm_models import fair_esm_pose_invariant, make_tiny_esm_if1
from tests.helpers.proteins import read_test_structure, structuredb_chains

pytest.importorskip("torch_scatter")
ATOL = 1e-5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("esm_if1") / "tiny_if1.pt"
    model = make_tiny_esm_if1(path)
    return path, model


def _alphabet():
    import esm

    return esm.Alphabet.from_architecture("invariant_gvp")


def test_batch_equals_fair_esm_get_encoder_output(tiny):
    from esm.inverse_folding.util import get_encoder_output

    path, model = tiny
    bb = get_backbone("esm_if1", layers="all", model=str(path))
    assert bb.level == "structure" and bb.layers == [0, 1, 2] and bb.dims[2] == 32
    chains = structuredb_chains()  # 20, 77, 146 residues in one padded forward
    out = bb.embed(chains)
    with torch.no_grad(), fair_esm_pose_invariant():
        for p, o in zip(chains, out):
            ref = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
            assert o[2].shape == (len(p), 32) and torch.allclose(o[2], ref, atol=ATOL)


def test_intermediate_layers_are_encoder_states(tiny):
    from esm.inverse_folding.util import CoordBatchConverter

    path, model = tiny
    p = structuredb_chains()[1]
    out = get_backbone("esm_if1", layers=[0, 1], model=str(path)).embed([p])[0]
    coords, conf, _, _, pad = CoordBatchConverter(_alphabet()).from_lists([p.backbone[:, :3]])
    with torch.no_grad(), fair_esm_pose_invariant():
        states = model.encoder(coords, pad, conf, return_all_hiddens=True)["encoder_states"]
    for k in (0, 1):
        assert torch.allclose(out[k], states[k][1:-1, 0], atol=ATOL)


def test_complex_context_equals_multichain_util(tiny):
    from esm.inverse_folding.multichain_util import get_encoder_output_for_complex

    path, model = tiny
    from esm.inverse_folding.util import get_encoder_output

    hb = read_test_structure("2hhb.pdb.gz").select_chains(["A", "B"])  # haemoglobin alpha + beta
    out = get_backbone("esm_if1", model=str(path)).embed([hb])[0][2]
    coords = {c: hb.backbone[hb.chain_ids == c, :3] for c in hb.chains}
    with torch.no_grad(), fair_esm_pose_invariant():
        for c in hb.chains:
            rows = torch.from_numpy(np.flatnonzero(hb.chain_ids == c))
            ref = get_encoder_output_for_complex(model, _alphabet(), coords, c)
            assert torch.allclose(out[rows], ref, atol=ATOL)
        alone = get_encoder_output(model, _alphabet(), coords["A"])
    assert not torch.allclose(out[: len(alone)], alone, atol=1e-3)  # the context matters


def test_real_structure_with_missing_backbone_atoms(tiny):
    from esm.inverse_folding.util import get_encoder_output

    path, model = tiny
    p = read_test_structure("backbones_1mr1D_missing_atoms.pdb.gz")  # residue 2 lacks C and O
    assert not p.backbone_mask[2].all()
    out = get_backbone("esm_if1", model=str(path)).embed([p])[0][2]
    assert torch.isfinite(out).all()
    with torch.no_grad(), fair_esm_pose_invariant():
        ref = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
    assert torch.allclose(out, ref, atol=ATOL)


def test_bfloat16_autocast(tiny):
    path, _ = tiny
    bb = get_backbone("esm_if1", model=str(path))
    p = structuredb_chains()[0]
    ref = bb.embed([p])[0][2]
    out = bb.to(dtype=torch.bfloat16).embed([p])[0][2]
    assert out.dtype == torch.float32 and not torch.equal(out, ref)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_pose_invariant_features_pad_exactly_what_reads_a_missing_atom():
    from pa_geo.backbones._esm_compat import import_inverse_folding

    inverse_folding = import_inverse_folding()
    features, util = inverse_folding.features, inverse_folding.util
    DihedralFeatures, GVPInputFeaturizer = features.DihedralFeatures, features.GVPInputFeaturizer
    CoordBatchConverter, get_rotation_frames, nan_to_num = util.CoordBatchConverter, util.get_rotation_frames, \
        util.nan_to_num
    from pa_geo.backbones.esm_if1_fast import (dihedral_ok, pose_invariant_dihedrals, pose_invariant_frames,
                                               pose_invariant_node_features)

    p = read_test_structure("backbones_1mr1D_missing_atoms.pdb.gz")  # residue 2 (row 3 after BOS) lacks C
    raw = CoordBatchConverter(_alphabet()).from_lists([p.backbone[:, :3]])[0]  # BOS / EOS rows: inf
    atom_ok = torch.isfinite(raw).all(-1)
    ok = dihedral_ok(atom_ok)[0]  # [L + 2, 3]: phi, psi, omega
    assert not ok[:2, 0].any() and ok[2, 0] and not ok[3].any() and ok[2, 1:].all() and not ok[4, 0]
    assert ok[5:-2].all() and not ok[-2, 1:].any() and not ok[-1].any()
    fwd = torch.ones(len(ok), dtype=torch.bool)
    fwd[[0, -2, -1]] = False  # CA of BOS and EOS missing: no direction between them and the chain ends
    back = fwd.roll(1)
    whole = atom_ok.all(-1)[0]

    def both(shift: float):
        coords = nan_to_num(raw + shift)  # fair-esm's zeros where atoms are missing
        ours = (*pose_invariant_node_features(coords, atom_ok), pose_invariant_frames(coords, atom_ok),
                pose_invariant_dihedrals(DihedralFeatures._dihedrals(coords), atom_ok))
        theirs = (*GVPInputFeaturizer.get_node_features(coords, whole[None]), get_rotation_frames(coords),
                  DihedralFeatures._dihedrals(coords))
        return ours, theirs

    (s, v, frames, dih), (s0, v0, frames0, dih0) = both(0.0)
    angles = ok.repeat(1, 2)
    for ours, theirs in ((s[0, :, :6], s0[0, :, :6]), (dih[0], dih0[0])):
        assert torch.equal(ours[angles], theirs[angles])
        assert torch.equal(ours[~angles], torch.tensor([1.0, 1, 1, 0, 0, 0]).repeat(len(ok), 1)[~angles])
    assert torch.equal(s[0, :, 6], s0[0, :, 6])  # the coordinate mask
    for k, present in ((0, fwd), (1, back), (2, whole)):  # CA forward, CA backward, side-chain direction
        assert torch.equal(v[0, present, k], v0[0, present, k]) and (v[0, ~present, k] == 0).all()
    assert torch.equal(frames[0, whole], frames0[0, whole]) and (frames[0, ~whole] == 0).all()
    (s1, v1, frames1, dih1), (t1, w1, _, _) = both(10.0)  # moved: fair-esm's padded entries read the origin
    assert not torch.allclose(s0, t1, atol=1e-3) and not torch.allclose(v0, w1, atol=1e-3)
    for a, b in ((s, s1), (v, v1), (frames, frames1), (dih, dih1)):  # float rounding; acos near 180 deg: ~2e-4
        assert torch.allclose(a, b, atol=1e-3)


def test_reference_featurisation_is_restored(tiny):
    from esm.inverse_folding.util import get_encoder_output

    _, model = tiny
    p = structuredb_chains()[0]
    with torch.no_grad():
        before = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
        with fair_esm_pose_invariant():
            patched = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
        after = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
    assert torch.equal(before, after) and not torch.allclose(before, patched, atol=1e-3)
