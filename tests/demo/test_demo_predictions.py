"""A checkpoint of a task with named classes predicts the names: the demo's 8-state DSSP task writes ``prediction`` =
H / G / I / E / B / T / S / C and ``prob_H .. prob_C``, through ``pa-geo predict --ckpt_path`` (input files, no
config) and through ``pa-geo predict --config ... --ckpt_path`` (the task's test split). The model is a tiny
adapter fitted for one epoch on the first shipped chains with the one-hot residue encoding (weight-free)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pa_geo.cli import main as pa_geo_main
from pa_geo.demo.tasks import SS8_CLASSES
from pa_geo.train.cli import build_cli
from tests.helpers.tables import PDB_DSSP

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
PROBS = [f"prob_{c}" for c in SS8_CLASSES]


def _args(work: Path) -> list[str]:
    onehot = json.dumps([{"cache": str(work / "cache"), "backbone": "onehot", "layers": [0]}])
    return ["--config", str(CONFIGS / "demo_ss8.yaml"), "--data.data_root", str(ROOT / "data"),
            "--data.max_records", "6", "--data.embeddings", onehot, "--data.embed_missing", "true",
            "--data.num_workers", "0", "--data.graph_cache", str(work / "examples"),
            "--model.encoder.init_args.adapter.init_args.d_model", "16",
            "--model.encoder.init_args.predictor.init_args.hidden_dim", "16", "--trainer.accelerator", "cpu",
            "--trainer.default_root_dir", str(work / "runs"), "--trainer.enable_progress_bar", "false",
            "--trainer.max_epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """``(work folder, best checkpoint)`` of a one-epoch demo_ss8 fit."""
    work = tmp_path_factory.mktemp("ss8")
    cli = build_cli(_args(work), run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = work / "runs" / "checkpoints" / "best.ckpt"
    assert ckpt.is_file()
    return work, ckpt


def _check_named(frame: pd.DataFrame) -> None:
    assert [c for c in frame.columns if c.startswith("prob_")] == PROBS  # output order, DSSP letters
    assert frame.columns[frame.columns.get_loc("prediction") + 1] == "prob_H"
    assert set(frame["prediction"]) <= set(SS8_CLASSES)
    probs = frame[PROBS].to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-3
    # the predicted class has the largest probability (ties within the 4 written decimals allowed)
    chosen = probs[np.arange(len(frame)), [SS8_CLASSES.index(c) for c in frame["prediction"]]]
    assert (chosen >= probs.max(1) - 1e-4).all()


def test_checkpoint_predicts_class_names_for_input_files(trained, tmp_path, monkeypatch):
    work, ckpt = trained
    monkeypatch.chdir(work)
    out = tmp_path / "preds.csv"
    structure = PDB_DSSP / "1y1lA.pdb.gz"
    assert pa_geo_main(["predict", "--ckpt_path", str(ckpt), "--input", str(structure), "--output", str(out),
                        "--no-progress"]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    _check_named(frame)
    assert len(frame) > 20 and "prob_0" not in frame and not frame["prediction"].astype(str).str.isdigit().any()


def test_config_predict_writes_class_names_for_the_test_split(trained, monkeypatch):
    work, ckpt = trained
    monkeypatch.chdir(work)
    assert pa_geo_main(["predict", *_args(work), "--ckpt_path", str(ckpt)]) == 0
    (csv,) = (work / "runs" / "predictions").glob("*.csv")
    frame = pd.read_csv(csv, keep_default_na=False)
    _check_named(frame)
    assert frame["id"].nunique() == 6  # the first 6 test chains
