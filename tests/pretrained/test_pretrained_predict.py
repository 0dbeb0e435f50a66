"""``pa-geo predict --pretrained`` / ``--list-pretrained`` and ``pa_geo.pretrained.load``: rows per residue with the
8-state and 3-state letters, probabilities and RSA; DSSP-like strings; chain breaks, missing atoms and CA traces;
the weights-only loader and the encoders' fingerprints."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pa_geo.pretrained.registry as registry
from pa_geo.cli import main
from pa_geo.errors import ConfigError
from pa_geo.io import read_structure
from pa_geo.pretrained import available, get_model, load
from pa_geo.pretrained.tasks import SS3_OF_SS8, SS8_CLASSES
from pa_geo.train.checkpoint_meta import META_KEY
from pa_geo.train.checkpoints import load_checkpoint
from pa_geo.train.predict import predict_from_checkpoint
from tests.helpers import REPO
from tests.helpers.pretrained import TEST_DATA, ca_only_copy, require

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
COLUMNS = ["id", "chain", "residue_number", "insertion_code", "residue", "ss8", "ss3",
           *[f"prob_{c}" for c in SS8_CLASSES], "rsa"]
ODD = [TEST_DATA / "2cviA_gap.pdb.gz", TEST_DATA / "backbones_1mr1D_missing_atoms.pdb.gz"]


def _rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype={"id": str, "chain": str, "insertion_code": str})


def test_registry_names_both_variants_and_ships_their_files() -> None:
    assert [get_model(n).name for n in registry.MODELS.names()] == ["ss8-rsa", "ss8-rsa-ca"]
    full, ca = get_model("ss8-rsa"), get_model("ss8_rsa_ca")
    assert (full.input_kind, full.ca_variant, ca.input_kind) == ("backbone", "ss8-rsa-ca", "ca_trace")
    assert full.checkpoint.parent == Path(registry.__file__).parent / "checkpoints"
    assert set(available()) <= {"ss8-rsa", "ss8-rsa-ca"}
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"checkpoints/*.ckpt", "checkpoints/*.json"} <= set(data["pa_geo.pretrained"])
    assert (REPO / full.card).is_file()


def test_list_pretrained_names_every_model(capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--list-pretrained"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["name", "input"] and [line.split()[0] for line in out[2:]] == ["ss8-rsa",
                                                                                                "ss8-rsa-ca"]


def test_unknown_or_missing_models_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["--input", str(ODD[0]), "--output", str(tmp_path / "p.csv")]
    assert main(["predict", "--pretrained", "ss8-rsb", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'ss8_rsa'" in err
    monkeypatch.setattr(registry, "FILES", tmp_path / "none")
    assert main(["predict", "--pretrained", "ss8-rsa", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ss8-rsa.ckpt is not in this installation" in err


def test_full_backbone_model_predicts_gaps_and_missing_atoms_and_refuses_ca_traces(
        tmp_path: Path, pretrained_cache: Path, capsys: pytest.CaptureFixture) -> None:
    require("ss8-rsa")
    trace = ca_only_copy(TEST_DATA / "2cviA.pdb.gz", tmp_path)
    out, strings = tmp_path / "preds.csv", tmp_path / "ss.tsv"
    code = main(["predict", "--pretrained", "ss8-rsa", "--input", *map(str, ODD), str(trace), "--output", str(out),
                 "--cache", str(pretrained_cache), "--dssp-strings", str(strings), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1  # an input was refused
    refused = [line for line in captured.err.splitlines() if line.startswith("refused")]
    assert refused == ["refused 2cviA_ca: a CA trace (no residue has N, CA and C), but the model reads full "
                       "backbones; predict it with --pretrained ss8-rsa-ca"]
    frame = _rows(out)
    assert list(frame.columns) == COLUMNS
    for path in ODD:
        protein = read_structure(path)
        mine = frame[frame["id"] == path.name.split(".")[0]]
        assert "".join(mine["residue"]) == protein.sequence and mine["residue_number"].tolist() == \
            protein.residue_numbers.tolist()
    probs = frame[[f"prob_{c}" for c in SS8_CLASSES]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=2e-3) and set(frame["ss8"]) <= set(SS8_CLASSES)
    assert (frame["ss8"].map(SS3_OF_SS8) == frame["ss3"]).all()
    assert (frame["ss8"] == np.array(list(SS8_CLASSES))[probs.argmax(1)]).all()
    assert frame["rsa"].between(-0.5, 2.0).all()
    ss = pd.read_csv(strings, sep="\t", keep_default_na=False, dtype=str)
    assert list(ss.columns) == ["id", "chain", "ss8", "ss3"] and len(ss) == 2
    assert ss["ss8"].tolist() == [("".join(frame[frame["id"] == i]["ss8"])) for i in ss["id"]]


def test_ca_model_reads_every_input_as_its_ca_trace(tmp_path: Path, pretrained_cache: Path) -> None:
    require("ss8-rsa-ca")
    full = TEST_DATA / "2cviA.pdb.gz"
    trace = ca_only_copy(full, tmp_path)
    out = tmp_path / "preds.csv"
    code = main(["predict", "--pretrained", "ss8-rsa-ca", "--input", str(full), str(trace), *map(str, ODD),
                 "--output", str(out), "--cache", str(pretrained_cache), "--no-progress"])
    assert code == 0
    frame = _rows(out)
    assert list(frame.columns) == COLUMNS and frame["id"].unique().tolist() == ["2cviA", "2cviA_ca", "2cviA_gap",
                                                                              "backbones_1mr1D_missing_atoms"]
    a = frame[frame["id"] == "2cviA"].drop(columns="id").reset_index(drop=True)
    b = frame[frame["id"] == "2cviA_ca"].drop(columns="id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_load_gives_a_module_over_pyg_batches(tmp_path: Path, pretrained_cache: Path) -> None:
    require("ss8-rsa")
    model = load("ss8-rsa", cache=pretrained_cache, device="cpu")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.classes == {"ss8": list(SS8_CLASSES)}
    batch = next(iter(model.batches([ODD[0]])))
    out = model(batch)
    n = batch.num_nodes
    assert set(out) == {"ss8_logits", "ss8_probs", "rsa"}
    assert out["ss8_logits"].shape == out["ss8_probs"].shape == (n, 8) and out["rsa"].shape == (n,)
    model.predict([ODD[0]], tmp_path / "p.csv", progress=False)
    frame = _rows(tmp_path / "p.csv")
    assert np.allclose(frame[[f"prob_{c}" for c in SS8_CLASSES]].to_numpy(), out["ss8_probs"].numpy(), atol=1e-4)
    assert np.allclose(frame["rsa"].to_numpy(), out["rsa"].numpy(), atol=1e-5)


def test_shipped_checkpoint_is_slim_and_reads_with_the_weights_only_loader() -> None:
    path = require("ss8-rsa")
    checkpoint = load_checkpoint(path)  # weights_only=True: anything but tensors and plain values is refused
    assert set(checkpoint) - {"pa_geo_checkpoint_file"} == {"state_dict", "hyper_parameters", META_KEY,
                                                            "pytorch-lightning_version"}
    meta = checkpoint[META_KEY]
    assert [b["backbone"] for b in meta["backbones"]] == ["near", "proteinmpnn"]
    assert all(b["id"].startswith(f"{b['backbone']}-") for b in meta["backbones"])
    assert meta["task"]["options"]["structure_input"] == "backbone" and set(meta["aux_tasks"])
    torch.load(path, weights_only=True)


def test_other_encoder_weights_are_refused_in_one_line(tmp_path: Path, pretrained_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    path = require("ss8-rsa")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint[META_KEY]["backbones"][1]["id"] = "proteinmpnn-0123456789abcdef"
    (tmp_path / "files").mkdir()
    torch.save(checkpoint, tmp_path / "files" / "ss8-rsa.ckpt")
    with pytest.raises(ConfigError, match="trained on proteinmpnn weights 0123456789abcdef") as err:
        predict_from_checkpoint(tmp_path / "files" / "ss8-rsa.ckpt", ODD[:1], tmp_path / "p.csv",
                                cache=str(pretrained_cache), progress=False)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(registry, "FILES", tmp_path / "files")
    with pytest.raises(ConfigError, match="0123456789abcdef"):
        load("ss8-rsa", cache=pretrained_cache)
    assert main(["predict", "--pretrained", "ss8-rsa", "--input", str(ODD[0]), "--output", str(tmp_path / "q.csv"),
                 "--cache", str(pretrained_cache), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0123456789abcdef" in err[0]
