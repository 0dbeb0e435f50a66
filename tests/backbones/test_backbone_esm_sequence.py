"""esm1b / esm2 backbones on tiny fair-esm checkpoints loaded through the same local-path code users hit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from pa_geo.errors import BackboneUnavailable, ConfigError
from pa_geo.io.protein import Protein
from tests.helpers.esm_models import make_tiny_esm1b, make_tiny_esm2
from tests.helpers.proteins import structuredb_chains

ATOL = 1e-5


def _own_forward(model, alphabet_arch: str, seq: str, layers: list[int]) -> dict[int, torch.Tensor]:
    import esm

    conv = esm.Alphabet.from_architecture(alphabet_arch).get_batch_converter()
    _, _, tokens = conv([("x", seq)])
    with torch.no_grad():
        reps = model(tokens, repr_layers=layers)["representations"]
    return {k: v[0, 1: 1 + len(seq)] for k, v in reps.items()}


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("esm")
    models = {"esm1b": make_tiny_esm1b(d / "tiny_esm1b.pt"), "esm2": make_tiny_esm2(d / "tiny_esm2.pt"),
              "esm1b_short": make_tiny_esm1b(d / "tiny_esm1b_short.pt", max_positions=34)}
    return d, models


@pytest.mark.parametrize("name", ["esm1b", "esm2"])
def test_local_checkpoint_equals_own_forward_and_batches(tiny_paths, name):
    d, models = tiny_paths
    bb = get_backbone(name, layers="all", model=str(d / f"tiny_{name}.pt"))
    assert bb.layers == [0, 1, 2] and bb.dims == {0: 32, 1: 32, 2: 32} and bb.level == "sequence"
    chains = structuredb_chains()
    batched = bb.embed(chains)  # one padded forward
    for p, out in zip(chains, batched):
        ref = _own_forward(models[name], "ESM-1b", p.sequence, [0, 1, 2])
        single = bb.embed([p])[0]
        for layer in bb.layers:
            assert out[layer].shape == (len(p), 32) and out[layer].dtype == torch.float32
            assert torch.allclose(single[layer], ref[layer], atol=ATOL)
            assert torch.allclose(out[layer], single[layer], atol=ATOL)


def test_multichain_protein_is_embedded_per_chain(tiny_paths):
    d, models = tiny_paths
    bb = get_backbone("esm1b", model=str(d / "tiny_esm1b.pt"))
    a, b = structuredb_chains()[:2]
    seq = a.sequence + b.sequence
    L = len(seq)
    both = Protein("ab", seq, np.array(["A"] * len(a) + ["B"] * len(b), dtype=object), np.arange(L),
                   np.full(L, "", dtype=object), np.concatenate([a.backbone, b.backbone]), np.zeros(L, bool))
    out = bb.embed([both])[0][2]
    assert torch.allclose(out[len(a):], _own_forward(models["esm1b"], "ESM-1b", b.sequence, [2])[2], atol=ATOL)
    assert torch.allclose(out[:len(a)], bb.embed([a])[0][2], atol=ATOL)


def test_windows_below_and_above_the_position_limit(tiny_paths):
    d, models = tiny_paths
    bb = get_backbone("esm1b", layers=[1, 2], model=str(d / "tiny_esm1b_short.pt"))
    assert bb.max_residues() == 32 and bb.window == 32 and bb.overlap == 8
    seq = structuredb_chains()[1].sequence  # 77 residues
    short = seq[:32]
    out = bb.embed([Protein.from_sequence("s", short)])[0]
    ref = _own_forward(models["esm1b_short"], "ESM-1b", short, [1, 2])
    assert all(torch.allclose(out[k], ref[k], atol=ATOL) for k in (1, 2))
    with pytest.raises(ValueError):  # the model itself cannot take the long chain
        _own_forward(models["esm1b_short"], "ESM-1b", seq, [2])
    long = bb.embed([Protein.from_sequence("l", seq)])[0][2]
    assert long.shape == (77, 32) and torch.isfinite(long).all()
    w = {(s, e): _own_forward(models["esm1b_short"], "ESM-1b", seq[s:e], [2])[2] for s, e in
         [(0, 32), (24, 56), (45, 77)]}
    assert torch.allclose(long[:24], w[(0, 32)][:24], atol=ATOL)  # only the first window covers these
    assert torch.allclose(long[56:], w[(45, 77)][11:], atol=ATOL)  # only the last window
    # row 28 is in the first window's right ramp (4/9) and the second's left ramp (5/9)
    blend = (4 / 9 * w[(0, 32)][28] + 5 / 9 * w[(24, 56)][4]) / (4 / 9 + 5 / 9)
    assert torch.allclose(long[28], blend, atol=ATOL)
    with pytest.raises(ConfigError):
        get_backbone("esm1b", model=str(d / "tiny_esm1b_short.pt"), window=40)


def test_hub_name_without_checkpoint_is_a_one_line_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackboneUnavailable) as err:
        get_backbone("esm1b")
    msg = str(err.value)
    assert "\n" not in msg and "esm1b_t33_650M_UR50S.pt" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "model=/path/to/esm1b_t33_650M_UR50S.pt" in msg
    with pytest.raises(BackboneUnavailable, match="not found"):
        get_backbone("esm1b", model=str(tmp_path / "missing.pt"))


def test_hub_name_found_in_torch_hub_cache(tiny_paths, tmp_path, monkeypatch):
    d, _ = tiny_paths
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "esm2_t6_8M_UR50D.pt").write_bytes((d / "tiny_esm2.pt").read_bytes())
    bb = get_backbone("esm2", model="esm2_t6_8M_UR50D")
    ref = get_backbone("esm2", model=str(d / "tiny_esm2.pt"))
    assert bb.fingerprint == ref.fingerprint and bb.layers == [2]


def test_fingerprints_follow_the_weights(tiny_paths, tmp_path):
    d, _ = tiny_paths
    make_tiny_esm2(tmp_path / "other.pt", seed=1)
    a = get_backbone("esm2", model=str(d / "tiny_esm2.pt"))
    assert a.fingerprint == get_backbone("esm2", model=str(d / "tiny_esm2.pt")).fingerprint
    assert a.fingerprint != get_backbone("esm2", model=str(tmp_path / "other.pt")).fingerprint
    assert a.id == f"esm2-{a.fingerprint}"


class Evil:
    """A global outside the weights-only allow-list: must be refused, never unpickled."""


def test_weights_only_loader_refuses_foreign_pickles(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"args": Evil(), "model": {}}, bad)
    with pytest.raises(BackboneUnavailable, match="allow-list"):
        get_backbone("esm1b", model=str(bad))
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(2)}, junk)
    with pytest.raises(BackboneUnavailable, match="not a fair-esm checkpoint"):
        get_backbone("esm1b", model=str(junk))


def test_dtype_change_still_returns_float32_cpu(tiny_paths):
    d, _ = tiny_paths
    bb = get_backbone("esm2", model=str(d / "tiny_esm2.pt"))
    p = structuredb_chains()[0]
    ref = bb.embed([p])[0][2]
    bb.to("cpu", torch.float64)
    assert bb.dtype == torch.float64
    out = bb.embed([p])[0][2]
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.allclose(out, ref, atol=1e-4)
    bb.to(dtype=torch.bfloat16)  # autocast: fair-esm's float32 internals break with bfloat16 weights
    assert bb.dtype == torch.bfloat16 and bb.weight_dtype == torch.float32
    out = bb.embed([p])[0][2]
    assert out.dtype == torch.float32 and not torch.equal(out, ref)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
