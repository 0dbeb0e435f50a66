"""Registry, layer resolution, windows, weight-free encoders and the base-class contract."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from pa_geo.backbones import available_backbones, get_backbone, resolve_layers
from pa_geo.backbones.windows import blend_windows, plan_windows, window_weights
from pa_geo.errors import ConfigError, StructureError
from pa_geo.io.protein import AMINO_ACIDS, Protein
from tests.helpers.proteins import structuredb_chains


def test_registry_lists_every_backbone_and_rejects_unknown():
    assert set(available_backbones()) >= {"esm1b", "esm2", "esm_if1", "proteinmpnn", "unirep", "near", "onehot",
                                          "blosum62"}
    with pytest.raises(ConfigError, match="unknown backbone 'nope'.*esm1b"):
        get_backbone("nope")


def test_resolve_layers():
    assert resolve_layers("x", None, range(34), 33) == [33]
    assert resolve_layers("x", "all", range(1, 4), 3) == [1, 2, 3]
    assert resolve_layers("x", [33, -1, 21], range(34), 33) == [21, 33]
    assert resolve_layers("x", 5, range(34), 33) == [5]
    for bad in ([34], "last", [1.5], [], [True]):
        with pytest.raises(ConfigError):
            resolve_layers("x", bad, range(34), 33)


def test_plan_windows_cover_and_overlap():
    assert plan_windows(10, 32, 8) == [(0, 10)]
    assert plan_windows(32, 32, 8) == [(0, 32)]
    plan = plan_windows(100, 32, 8)
    assert plan[0] == (0, 32) and plan[-1] == (68, 100)
    assert all(e - s == 32 for s, e in plan)
    assert all(plan[i][1] - plan[i + 1][0] >= 8 for i in range(len(plan) - 1))
    with pytest.raises(ConfigError):
        plan_windows(100, 32, 32)


def test_blend_windows_is_ramped_weighted_mean():
    plan = [(0, 6), (4, 10)]
    a, b = torch.zeros(6, 1), torch.ones(6, 1)
    out = blend_windows([a, b], plan, 10, 2)
    assert torch.equal(out[:4, 0], torch.zeros(4)) and torch.equal(out[6:, 0], torch.ones(4))
    wa, wb = window_weights(0, 6, 10, 2)[4:], window_weights(4, 10, 10, 2)[:2]  # ramps 2/3,1/3 and 1/3,2/3
    assert torch.allclose(out[4:6, 0], wb / (wa + wb))
    assert out[4, 0] < out[5, 0]


def test_onehot_and_blosum62_rows():
    p = Protein.from_sequence("p", "ACWXB")
    oh = get_backbone("onehot").embed([p])[0][0]
    assert oh.shape == (5, 21) and oh.dtype == torch.float32
    assert oh.argmax(1).tolist() == [0, 1, AMINO_ACIDS.index("W"), 20, 20]
    bl = get_backbone("blosum62")
    assert bl.dims == {0: 20} and get_backbone("blosum62", include_x=True).dims == {0: 21}
    e = bl.embed([p])[0][0]
    assert e[0, 0] == 4 and e[2, AMINO_ACIDS.index("W")] == 11 and e[1, 1] == 9  # BLOSUM62 A/A, W/W, C/C
    assert torch.equal(e[3], e[4])  # unknown letters share the X row
    assert bl.fingerprint != get_backbone("onehot").fingerprint
    assert bl.id.startswith("blosum62-")


def test_embed_handles_empty_proteins_and_rejects_sequence_only_for_structure_backbones():
    bb = get_backbone("onehot")
    out = bb.embed([Protein.from_sequence("e", ""), Protein.from_sequence("a", "AC")])
    assert out[0][0].shape == (0, 21) and out[1][0].shape == (2, 21)
    mpnn = get_backbone("proteinmpnn")
    with pytest.raises(StructureError, match="proteinmpnn needs coordinates.*seqonly"):
        mpnn.embed([Protein.from_sequence("seqonly", "ACDE")])


def test_backbones_stay_in_eval():
    bb = get_backbone("near")
    bb.train()
    assert not bb.training and all(not p.requires_grad for p in bb.parameters())
    assert np.isfinite(bb.embed([Protein.from_sequence("a", "MKV")])[0][8].numpy()).all()


@pytest.mark.parametrize("name, kw", [("near", {}), ("unirep", {"size": 64}), ("blosum62", {})])
def test_to_float64_still_returns_float32_cpu(name, kw):
    p = structuredb_chains()[0]
    bb = get_backbone(name, **kw)
    ref = bb.embed([p])[0]
    bb.to("cpu", torch.float64)
    assert bb.dtype == torch.float64
    out = bb.embed([p])[0]
    for layer in bb.layers:
        assert out[layer].dtype == torch.float32 and out[layer].device.type == "cpu"
        assert torch.allclose(out[layer], ref[layer], atol=1e-4)


def test_proteinmpnn_stays_float32():
    p = structuredb_chains()[0]
    bb = get_backbone("proteinmpnn")
    ref = bb.embed([p])[0][3]
    with pytest.warns(UserWarning, match="runs in float32"):
        bb.to("cpu", torch.float64)
    assert bb.dtype == torch.float32 and torch.equal(bb.embed([p])[0][3], ref)


@pytest.mark.parametrize("name, kw", [("near", {}), ("unirep", {"size": 64}), ("proteinmpnn", {})])
def test_half_dtypes_run_under_autocast(name, kw):
    p = structuredb_chains()[0]
    bb = get_backbone(name, **kw)
    ref = bb.embed([p])[0][bb.layers[-1]]
    bb.to(dtype=torch.bfloat16)
    assert bb.dtype == torch.bfloat16 and bb.weight_dtype == torch.float32
    out = bb.embed([p])[0][bb.layers[-1]]
    assert out.dtype == torch.float32 and not torch.equal(out, ref)  # really computed in bfloat16
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    bb.to(dtype=torch.float32)
    assert bb.dtype == torch.float32 and torch.allclose(bb.embed([p])[0][bb.layers[-1]], ref, atol=1e-6)


def test_file_digest_samples_large_files(tmp_path, monkeypatch):
    from pa_geo.backbones import _weights

    monkeypatch.setattr(_weights, "_WHOLE_FILE_LIMIT", 1000)
    monkeypatch.setattr(_weights, "_BLOCK", 16)
    f = tmp_path / "w.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    f.write_bytes(bytes(data))
    first = _weights.file_digest(f)
    assert first == _weights.file_digest(f) and len(first) == 64
    data[0] ^= 1  # inside the first sampled block
    f.write_bytes(bytes(data))
    assert _weights.file_digest(f) != first
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    assert _weights.file_digest(small) == hashlib.sha256(b"abc").hexdigest()


def test_registry_normalises_names_and_refuses_silent_overwrites():
    from pa_geo.backbones import register_backbone
    from pa_geo.backbones.base import BACKBONES
    from pa_geo.backbones.esm_if1 import ESMIF1Backbone

    assert BACKBONES.get("ESM-IF1") is ESMIF1Backbone and ESMIF1Backbone.registry_name == "esm_if1"
    with pytest.raises(ConfigError, match="did you mean 'esm1b'"):
        get_backbone("esm1c")
    with pytest.raises(ConfigError, match="already registered"):
        register_backbone("onehot")(type("Other", (get_backbone("onehot").__class__,), {}))
    assert BACKBONES.get("onehot").__name__ == "OneHotBackbone"
