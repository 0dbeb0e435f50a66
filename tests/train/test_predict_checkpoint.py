"""Prediction from a checkpoint alone: ``PaGeoModule.load_from_checkpoint(path)`` with no other argument, and
``pa-geo predict --ckpt_path ... --input ... --output ...`` (no config): rows, class names, refusals.

The model is trained here for one epoch through the CLI on a table of 8 shipped PDB chains (residue-level DSSP),
on the one-hot residue encoding (a real, weight-free backbone, so fit embeds for real in no time)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from pa_geo.cli import main as pa_geo_main
from pa_geo.errors import ConfigError
from pa_geo.io import read_structure
from pa_geo.tasks import TASKS
from tests.helpers.tables import PDB_DSSP, write_dssp_table
from pa_geo.train.cli import build_cli
from pa_geo.train.module import PaGeoModule
from pa_geo.train.predict import predict_from_checkpoint

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
CUSTOM = Path(__file__).resolve().parents[2] / "configs" / "custom"
ONEHOT = json.dumps([{"cache": ".cache/embeddings", "backbone": "onehot", "layers": [0]}])
SMALL = ["--model.encoder.init_args.adapter.init_args.d_model", "32",
         "--model.encoder.init_args.predictor.init_args.hidden_dim", "32"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(work folder, best checkpoint)`` of a one-epoch fit of configs/custom/residue_classification.yaml."""
    work = tmp_path_factory.mktemp("fit")
    table = write_dssp_table(work / "my", n=8)
    cli = build_cli(["--config", str(CUSTOM / "residue_classification.yaml"), "--data.table.path", str(table),
                     "--data.embeddings", ONEHOT, "--data.num_workers", "0", "--data.graph_cache",
                     str(work / "examples"), "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                     "--trainer.default_root_dir", str(work / "runs"),
                     "--trainer.enable_progress_bar", "false", *SMALL], run=False)
    import os
    cwd = os.getcwd()
    os.chdir(work)  # the cache path is relative, as in the template
    try:
        cli.trainer.fit(cli.model, cli.datamodule)
    finally:
        os.chdir(cwd)
    ckpt = work / "runs" / "checkpoints" / "best.ckpt"
    assert ckpt.is_file()
    return work, ckpt


def test_load_from_checkpoint_needs_no_other_argument(trained):
    work, ckpt = trained
    assert "table" not in TASKS  # the table's task is handed to the model, never registered
    model = PaGeoModule.load_from_checkpoint(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    spec = model.specs["table"]
    assert spec.options["class_names"] == ["-", "E", "H"] and spec.kind == "residue" and spec.num_outputs == 3
    assert type(model.encoder).__name__ == "AdapterEncoder" and model.encoder.node_dim > 0
    meta = model.checkpoint_meta(str(ckpt))
    assert meta["backbones"][0]["backbone"] == "onehot" and meta["backbones"][0]["id"].startswith("onehot-")
    assert meta["graph"]["kind"] == "residue"


def test_predict_rows_per_residue_with_class_names(trained, tmp_path, monkeypatch):
    work, ckpt = trained
    monkeypatch.chdir(work)
    new = PDB_DSSP / "1y1lA.pdb.gz"  # not in the table
    (tmp_path / "q.fasta").write_text(">query first record\nMKTAYIAKQRQISFVKSHF\n")
    out = tmp_path / "preds.csv"
    summary = predict_from_checkpoint(ckpt, [new, tmp_path / "q.fasta"], out, progress=False)
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["id", "chain", "residue_number", "insertion_code", "residue", "prediction",
                                   "prob_-", "prob_E", "prob_H"]
    protein = read_structure(new)
    mine = frame[frame["id"] == "1y1lA"]
    assert len(mine) == len(protein) and summary.rows == len(protein) + 19
    assert mine["residue_number"].tolist() == protein.residue_numbers.tolist()
    assert "".join(mine["residue"]) == protein.sequence and set(mine["chain"]) == {"A"}
    assert set(frame["prediction"]) <= {"-", "E", "H"}
    probs = frame[["prob_-", "prob_E", "prob_H"]].to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-3
    assert (frame["prediction"].to_numpy() == pd.Series(["-", "E", "H"])[probs.argmax(1)].to_numpy()).all()
    assert frame[frame["id"] == "query"]["residue"].str.cat() == "MKTAYIAKQRQISFVKSHF"


def test_predictions_follow_the_weights(trained, tmp_path, monkeypatch):
    work, ckpt = trained
    monkeypatch.chdir(work)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    head_bias = [k for k in checkpoint["state_dict"] if k.startswith("heads.") and k.endswith("bias")][-1]
    checkpoint["state_dict"][head_bias] += torch.tensor([5.0, 0.0, 0.0])  # push every residue towards class '-'
    changed = tmp_path / "changed.ckpt"
    torch.save(checkpoint, changed)
    predict_from_checkpoint(changed, [PDB_DSSP / "1y1lA.pdb.gz"], tmp_path / "a.csv", progress=False)
    predict_from_checkpoint(ckpt, [PDB_DSSP / "1y1lA.pdb.gz"], tmp_path / "b.csv", progress=False)
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert (a["prob_-"] > b["prob_-"]).all() and (a["prediction"] == "-").all()


def test_refuses_other_backbone_weights(trained, tmp_path, monkeypatch):
    work, ckpt = trained
    monkeypatch.chdir(work)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    checkpoint["pa_geo"]["backbones"][0]["id"] = "onehot-0123456789abcdef"
    other = tmp_path / "other.ckpt"
    torch.save(checkpoint, other)
    with pytest.raises(ConfigError) as err:
        predict_from_checkpoint(other, [PDB_DSSP / "1y1lA.pdb.gz"], tmp_path / "x.csv", progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "trained on onehot weights 0123456789abcdef" in msg and "fingerprint" in msg


def test_cli_without_config_lists_refused_inputs(trained, tmp_path, monkeypatch, capsys):
    work, ckpt = trained
    monkeypatch.chdir(work)
    (tmp_path / "bad.pdb").write_text("not a structure\n")
    out = tmp_path / "p.csv"
    code = pa_geo_main(["predict", "--ckpt_path", str(ckpt), "--input", str(PDB_DSSP / "1y1lA.pdb.gz"),
                        str(tmp_path / "bad.pdb"), "--output", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and out.is_file()
    assert f"refused {tmp_path / 'bad.pdb'}: " in captured.err
    assert "predicted 1 input(s)" in captured.out
    assert pa_geo_main(["predict", "--ckpt_path", str(tmp_path / "none.ckpt"), "--input", "x.pdb", "--output",
                        str(out)]) == 1
    assert "no such checkpoint" in capsys.readouterr().err


def test_fit_names_a_bad_row_in_one_line_or_skips_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    table = write_dssp_table(tmp_path / "my", n=8)
    lines = table.read_text().splitlines()
    lines[3] = lines[3].replace(str(PDB_DSSP), str(tmp_path / "gone"))  # row 3 (line 4): its file is missing
    table.write_text("\n".join(lines) + "\n")
    bad_id = lines[3].split(",")[0]
    args = ["fit", "--config", str(CUSTOM / "residue_classification.yaml"), "--data.table.path", str(table),
            "--data.embeddings", ONEHOT, "--data.num_workers", "0", "--trainer.max_epochs", "1",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", *SMALL]
    assert pa_geo_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"pa-geo fit: error: {table} line 4 (id {bad_id}): ") and "no such file" in err
    assert pa_geo_main(args + ["--data.table.skip_bad", "true"]) == 0
    assert f"line 4 (id {bad_id})" in capsys.readouterr().err  # skipped, counted and named in the log
