"""``get_backbone("hf", ...)`` on tiny random models of each family, saved with ``save_pretrained`` and loaded
through the user path: tokenisation per family, row alignment, windows, fingerprints, the offline error line."""
from __future__ import annotations

import shutil

import pytest
import torch

from pa_geo.backbones import get_backbone
from pa_geo.errors import BackboneUnavailable, ConfigError
from pa_geo.io.protein import Protein
from tests.helpers.esm_models import make_tiny_esm2
from tests.helpers.hf_models import make_tiny_ankh, make_tiny_hf_esm, make_tiny_prot_t5, make_tiny_protbert
from tests.helpers.proteins import structuredb_chains

MAKERS = {"esm": make_tiny_hf_esm, "protbert": make_tiny_protbert, "prot_t5": make_tiny_prot_t5,
          "ankh": make_tiny_ankh}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    import transformers

    transformers.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("hf")
    return {name: make(root / name) for name, make in MAKERS.items()}


def _model_card_rows(path, family: str, seq: str) -> torch.Tensor:
    """Last hidden state per residue, computed the way each model's card / reference script does it."""
    import re

    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(path)
    cls = {"esm": transformers.EsmModel, "protbert": transformers.BertModel, "prot_t5": transformers.T5EncoderModel,
           "ankh": transformers.T5EncoderModel}[family]
    model = cls.from_pretrained(path).eval()
    if family == "ankh":  # ankh/extract.py: list of characters, is_split_into_words; drop the trailing </s>
        enc = tok([list(seq)], is_split_into_words=True, return_tensors="pt")
    elif family in ("protbert", "prot_t5"):  # ProtTrans cards: UZOB -> X, space separated
        enc = tok([" ".join(re.sub(r"[UZOB]", "X", seq))], return_tensors="pt")
    else:
        enc = tok([seq], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**{k: v for k, v in enc.items() if k != "token_type_ids"}).last_hidden_state[0]
    return hidden[1:-1] if family in ("esm", "protbert") else hidden[:-1]


@pytest.mark.parametrize("family", list(MAKERS))
def test_each_family_loads_through_get_backbone_and_rows_align_with_residues(tiny_dirs, family):
    bb = get_backbone("hf", model=str(tiny_dirs[family]), layers="all")
    assert bb.family.name == family and bb.model.config._attn_implementation == "sdpa"
    assert bb.layers[0] == 0 and bb.dims[bb.layers[-1]] == 32 and bb.id.startswith("hf-")
    chains = structuredb_chains()
    batched = bb.embed(chains)  # one padded forward
    for p, out in zip(chains, batched):
        assert all(out[k].shape == (len(p), 32) for k in bb.layers)
        single = bb.embed([p])[0]
        assert all(torch.allclose(out[k], single[k], atol=1e-5) for k in bb.layers)
    seq = chains[1].sequence
    ref = _model_card_rows(tiny_dirs[family], family, seq)
    assert torch.allclose(batched[1][bb.layers[-1]], ref, atol=1e-5)
    k = 40  # mutate one residue: its own row changes
    mutant = seq[:k] + ("W" if seq[k] != "W" else "Y") + seq[k + 1:]
    a, b = bb.embed([Protein.from_sequence("wt", seq), Protein.from_sequence("mut", mutant)])
    last = bb.layers[-1]
    diff = (a[last] - b[last]).abs().amax(1)
    assert diff[k] > 1e-3 and diff[k] == diff.max()


def test_rare_residues_follow_each_family(tiny_dirs):
    rare, x = Protein.from_sequence("u", "MKTUAYZ"), Protein.from_sequence("x", "MKTXAYX")
    for family in MAKERS:
        bb = get_backbone("hf", model=str(tiny_dirs[family]))
        a, b = bb.embed([rare, x])
        same = torch.equal(a[bb.layers[0]], b[bb.layers[0]])
        assert same == (family in ("protbert", "prot_t5")), family  # ProtTrans maps UZOB -> X; ESM/Ankh keep them


def test_windows_above_the_position_limit(tmp_path):
    path = make_tiny_hf_esm(tmp_path / "short", max_positions=34)  # 32 residues + <cls> + <eos>
    bb = get_backbone("hf", model=str(path), layers=[3])
    assert bb.window == 32 and bb.overlap == 8 and bb.max_residues() == 32
    seq = structuredb_chains()[1].sequence  # 77 residues
    long = bb.embed([Protein.from_sequence("l", seq)])[0][3]
    assert long.shape == (77, 32) and torch.isfinite(long).all()
    first = bb.embed([Protein.from_sequence("w", seq[:32])])[0][3]
    last = bb.embed([Protein.from_sequence("w", seq[45:])])[0][3]
    assert torch.allclose(long[:24], first[:24], atol=1e-5) and torch.allclose(long[56:], last[11:], atol=1e-5)
    with pytest.raises(ConfigError, match="window 40"):
        get_backbone("hf", model=str(path), window=40)


def test_hf_esm_equals_fair_esm_on_the_same_weights(tmp_path):
    import esm

    from pa_geo.backbones.hf_convert import fair_esm2_to_hf

    model = make_tiny_esm2(tmp_path / "fair.pt", layers=3)
    fair_esm2_to_hf(model, esm.Alphabet.from_architecture("ESM-1b"), tmp_path / "hf")
    fair = get_backbone("esm2", model=str(tmp_path / "fair.pt"), layers="all")
    hf = get_backbone("hf", model=str(tmp_path / "hf"), layers="all")
    chains = structuredb_chains()
    for a, b in zip(fair.embed(chains), hf.embed(chains)):
        assert max(float((a[k] - b[k]).abs().max()) for k in fair.layers) <= 1e-4


def test_fingerprint_follows_weights_and_settings(tiny_dirs, tmp_path):
    a = get_backbone("hf", model=str(tiny_dirs["protbert"]))
    assert a.fingerprint == get_backbone("hf", model=str(tiny_dirs["protbert"])).fingerprint
    other = make_tiny_protbert(tmp_path / "other", seed=1)
    assert get_backbone("hf", model=str(other)).fingerprint != a.fingerprint
    assert get_backbone("hf", model=str(tiny_dirs["protbert"]), window=100).fingerprint != a.fingerprint


def test_hub_id_found_in_local_cache_else_one_line_offline_error(tiny_dirs, tmp_path, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    with pytest.raises(BackboneUnavailable) as err:
        get_backbone("hf", model="Rostlab/prot_bert")
    msg = str(err.value)
    assert "\n" not in msg and str(hub) in msg and "HF_HOME" in msg and "model=/path/to/prot_bert" in msg
    # the layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<revision>/...}
    repo = hub / "models--Rostlab--prot_bert"
    shutil.copytree(tiny_dirs["protbert"], repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    bb = get_backbone("hf", model="Rostlab/prot_bert")
    assert bb.family.name == "protbert"
    assert bb.fingerprint == get_backbone("hf", model=str(tiny_dirs["protbert"])).fingerprint
    with pytest.raises(BackboneUnavailable, match="not found"):
        get_backbone("hf", model=str(tmp_path / "missing" / "dir"))
    with pytest.raises(ConfigError, match="model="):
        get_backbone("hf")
