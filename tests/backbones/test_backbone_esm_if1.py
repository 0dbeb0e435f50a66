"""esm_if1 on a tiny GVP-Transformer checkpoint: batched encoder == fair-esm's per-chain / complex helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from tests.helpers.esm_models import make_tiny_esm_if1
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
    with torch.no_grad():
        for p, o in zip(chains, out):
            ref = get_encoder_output(model, _alphabet(), p.backbone[:, :3])
            assert o[2].shape == (len(p), 32) and torch.allclose(o[2], ref, atol=ATOL)


def test_intermediate_layers_are_encoder_states(tiny):
    from esm.inverse_folding.util import CoordBatchConverter

    path, model = tiny
    p = structuredb_chains()[1]
    out = get_backbone("esm_if1", layers=[0, 1], model=str(path)).embed([p])[0]
    coords, conf, _, _, pad = CoordBatchConverter(_alphabet()).from_lists([p.backbone[:, :3]])
    with torch.no_grad():
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
    with torch.no_grad():
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
    with torch.no_grad():
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
