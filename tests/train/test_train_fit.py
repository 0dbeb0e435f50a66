"""Training on real StructureDB chains: loss goes down, checkpoint + resume, predict CSV, multi-task metrics,
one-line CLI errors."""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pa_geo.cli import main
from tests.helpers import training as tk
from pa_geo.train.cli import build_cli

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    tk.fill_cache(root / "cache")
    return root


def _args(cfg: dict, path: Path) -> list[str]:
    return ["--config", str(tk.write_config(path, cfg))]


def test_loss_decreases_on_a_fixed_batch(work: Path) -> None:
    cfg = tk.config(work)
    cli = build_cli(_args(cfg, work / "fixed.yaml"), run=False)
    dm, model = cli.datamodule, cli.model
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.node_y_mask.any() and batch.task == "ttest_ss3" and batch.split == "train"
    opt = torch.optim.AdamW(model.parameters(), lr=5e-2)
    losses = []
    for _ in range(10):
        loss, _ = model._task_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # a linear probe on one-hot residue types: SS3 is only partly predictable, but every step must help
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.05, losses


def _ckpt_cfg(work: Path, name: str, **kw) -> dict:
    cfg = tk.config(work / name, enable_checkpointing=True, **kw)
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cfg["trainer"]["callbacks"] = [
        {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
         "init_args": {"dirpath": str(work / name / "ckpt"), "save_last": True, "monitor": "val/accuracy",
                       "mode": "max"}},
        {"class_path": "pa_geo.train.predictions.PredictionCSVWriter",
         "init_args": {"output_dir": str(work / name / "pred")}},
        {"class_path": "tests.helpers.training.StartStep", "init_args": {"path": str(work / name / "start.txt")}},
    ]
    return cfg


def test_fit_resume_and_predict_per_residue(work: Path) -> None:
    cfg = _ckpt_cfg(work, "resume")
    args = _args(cfg, work / "resume.yaml")
    assert main(["fit", *args]) == 0
    last = work / "resume" / "ckpt" / "last.ckpt"
    first = torch.load(last, map_location="cpu", weights_only=False)
    steps = first["global_step"]
    assert steps >= 2 and (work / "resume" / "start.txt").read_text() == "0 0"

    assert main(["fit", *args, "--trainer.max_epochs=2", "--ckpt_path", str(last)]) == 0
    resumed = torch.load(last, map_location="cpu", weights_only=False)
    assert (work / "resume" / "start.txt").read_text() == f"{steps} 1"  # started where the checkpoint ended
    assert resumed["global_step"] == 2 * steps
    w0 = first["state_dict"]["heads.ttest_ss3.net.lins.0.weight"]
    assert not torch.equal(w0, resumed["state_dict"]["heads.ttest_ss3.net.lins.0.weight"])

    assert main(["predict", *args, "--ckpt_path", str(last)]) == 0
    frame = pd.read_csv(work / "resume" / "pred" / "predictions.csv", dtype={"id": str})
    proteins = [r.protein for r in tk._structuredb(str(tk.DATA_ROOT))[22:28]]  # the predict split (test)
    assert len(frame) == sum(len(p) for p in proteins)  # one row per residue
    assert list(frame.columns) == ["id", "residue_index", "residue_number", "prediction", "prob_0", "prob_1",
                                   "prob_2"]
    assert set(frame["id"]) == {p.id for p in proteins}
    one = frame[frame["id"] == proteins[0].id]
    assert one["residue_number"].tolist() == proteins[0].residue_numbers.tolist()
    assert ((one[["prob_0", "prob_1", "prob_2"]].sum(axis=1) - 1).abs() < 1e-5).all()


def test_predict_graph_level_writes_one_row_per_protein(work: Path) -> None:
    cfg = tk.config(work / "helix", task="ttest_helix", level="graph")
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cfg["data"]["predict_split"] = "test_b"
    cfg["trainer"]["callbacks"] = [{"class_path": "pa_geo.train.predictions.PredictionCSVWriter",
                                    "init_args": {"output_dir": str(work / "helix")}}]
    args = _args(cfg, work / "helix.yaml")
    assert main(["fit", *args]) == 0  # no checkpoint callback: predict runs with fresh weights below
    assert main(["predict", *args]) == 0
    frame = pd.read_csv(work / "helix" / "predictions.csv", dtype={"id": str})
    ids = [r.protein.id for r in tk._structuredb(str(tk.DATA_ROOT))[28:32]]
    assert sorted(frame["id"]) == sorted(ids) and list(frame.columns) == ["id", "prediction"]


def test_multitask_reports_every_task_and_split(work: Path) -> None:
    cfg = tk.config(work, aux={"ttest_rsa": ("node", 1, 0.5)})
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cli = build_cli(_args(cfg, work / "multi.yaml"), run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    logged = set(cli.trainer.callback_metrics)
    assert {"train/ttest_ss3/loss", "train/ttest_rsa/loss", "train/loss", "val/loss", "val/ttest_rsa/loss",
            "val/accuracy", "val/ttest_rsa/mae", "val/ttest_rsa/pearson"} <= logged
    results = cli.trainer.test(cli.model, cli.datamodule)
    assert len(results) == 4  # one test loader per (task, test split)
    keys = set(results[0])
    assert {"test/test/accuracy", "test/test_b/accuracy", "test/ttest_rsa/test/mae", "test/ttest_rsa/test_b/mae",
            "test/ttest_rsa/test/pearson", "test/ttest_rsa/test_b/pearson"} <= keys
    # RSA is standardised for the loss; metrics see label units again (MAE of RSA in [0, 1.5] is below 1)
    assert 0 < float(cli.trainer.callback_metrics["test/ttest_rsa/test/mae"]) < 1.0
    loss = cli.model.losses["ttest_rsa"]
    assert float(loss.std) != 1.0 and float(loss.mean) > 0  # train-split statistics were installed


def _error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"pa-geo {argv[0]}: error:"), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_user_errors_are_one_line(work: Path, capsys: pytest.CaptureFixture) -> None:
    base = tk.config(work / "errors")
    cfg = copy.deepcopy(base)
    cfg["data"]["embeddings"][0]["cache"] = str(work / "empty_cache")
    line = _error_line(capsys, ["fit", *_args(cfg, work / "e1.yaml")])
    assert f"run: pa-geo embed --config {work / 'e1.yaml'} (or add" in line  # the command that fills the cache

    cfg = copy.deepcopy(base)
    cfg["data"]["embeddings"][0]["backbone"] = "esm9"
    assert "unknown backbone 'esm9'" in _error_line(capsys, ["fit", *_args(cfg, work / "e2.yaml")])

    cfg = copy.deepcopy(base)
    cfg["model"]["encoder"] = {"class_path": "pa_geo.nn.predictor.MultiScalePredictor",
                               "init_args": {"in_dim": 21, "pool": "nosuchpool"}}
    assert "nosuchpool" in _error_line(capsys, ["fit", *_args(cfg, work / "e3.yaml")])

    cfg = copy.deepcopy(tk.config(work / "errors", task="demo_ss3"))
    cfg["data"]["data_root"] = str(work / "no_data_here")
    assert "no_data_here" in _error_line(capsys, ["validate", *_args(cfg, work / "e4.yaml")])


def test_example_stores_are_built_once_and_reused(work: Path) -> None:
    from pa_geo.train.datamodule import PaGeoDataModule

    def make() -> PaGeoDataModule:
        return PaGeoDataModule("ttest_ss3", str(tk.DATA_ROOT),
                               [{"cache": str(work / "cache"), "backbone": "onehot", "layers": [0]}],
                               {"kind": "residue", "radius": 8.0}, batch_nodes=600, aux_data_roots={"ttest_rsa": None},
                               graph_cache=str(work / "stores"))

    dm = make()
    dm.prepare_data()
    files = sorted((work / "stores").rglob("examples.bin"))
    assert [(f.parents[2].name, f.parents[1].name) for f in files] == [
        (t, s) for t in ("ttest_rsa", "ttest_ss3") for s in ("test", "test_b", "train", "valid")]
    inodes = {f: f.stat().st_ino for f in files}
    again = make()
    again.prepare_data()
    again.setup("fit")
    assert {f: f.stat().st_ino for f in sorted((work / "stores").rglob("examples.bin"))} == inodes  # not rewritten
    dm.setup("fit")
    ga, gb = dm.dataset("ttest_ss3", "train")[0], again.dataset("ttest_ss3", "train")[0]
    assert torch.equal(ga.edge_index, gb.edge_index) and torch.equal(ga.emb_onehot_0, gb.emb_onehot_0)
    assert torch.equal(ga.emb_onehot_0.argmax(-1), ga.residue_type)  # the one-hot embedding of its own residues
    rsa = again.dataset("ttest_rsa", "train")[0]  # the aux task's store carries its own labels
    assert rsa.node_y.dtype == torch.float32 and gb.node_y.dtype == torch.long
    stats = again.target_stats("ttest_rsa")
    labels = np.concatenate([r.label for r in tk._records("rsa", tk.DATA_ROOT, "train")])
    assert stats == pytest.approx((labels.mean(), labels.std()), rel=1e-5)  # computed by the build, stored
    other = PaGeoDataModule("ttest_ss3", str(tk.DATA_ROOT), None, {"kind": "residue", "radius": 6.0},
                            graph_cache=str(work / "stores"))
    other.prepare_data()  # new graph settings: a new store beside the old one
    assert len(list((work / "stores" / "ttest_ss3" / "train").iterdir())) == 2


def test_one_checkpoint_callback_writes_best_and_every_epochs_last(work: Path) -> None:
    cfg = tk.config(work / "bestlast", enable_checkpointing=True, max_epochs=3)
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cfg["trainer"]["callbacks"] = [{"class_path": "pa_geo.train.best_and_last.BestAndLastCheckpoint",
                                    "init_args": {"dirpath": str(work / "bestlast" / "ckpt"), "monitor": None}}]
    cli = build_cli(_args(cfg, work / "bestlast.yaml"), run=False)
    (ckpt,) = cli.trainer.checkpoint_callbacks
    assert (ckpt.monitor, ckpt.mode) == ("val/accuracy", "max")  # the task's primary metric, filled by the CLI
    cli.trainer.fit(cli.model, cli.datamodule)
    assert sorted(p.name for p in (work / "bestlast" / "ckpt").iterdir()) == ["best.ckpt", "last.ckpt"]
    last = torch.load(work / "bestlast" / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    best = torch.load(work / "bestlast" / "ckpt" / "best.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2 and best["epoch"] == ckpt.best_epoch <= 2  # last.ckpt: the latest epoch, improved or not
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli.trainer.test(cli.model, cli.datamodule, ckpt_path="best", verbose=False)
    assert not [w for w in caught if "multiple `ModelCheckpoint`" in str(w.message)]


def test_predict_files_from_a_config_in_input_order_with_residue_columns(work: Path, tmp_path: Path) -> None:
    from tests.helpers.tables import PDB_DSSP

    cfg = tk.config(work / "inputs")
    cfg["data"]["embeddings"][0]["cache"] = str(work / "inputs_cache")
    files = [PDB_DSSP / "1y1lA.pdb.gz", PDB_DSSP / "3ieyB.pdb.gz"]
    cfg["data"]["predict_inputs"] = [str(f) for f in files]
    cfg["data"]["embed_missing"] = True
    cfg["trainer"]["callbacks"] = [{"class_path": "pa_geo.train.predictions.PredictionCSVWriter",
                                    "init_args": {"output_dir": str(tmp_path)}}]
    assert main(["predict", *_args(cfg, work / "inputs.yaml")]) == 0
    frame = pd.read_csv(tmp_path / "predictions.csv", dtype={"id": str}, keep_default_na=False)
    assert list(frame.columns) == ["id", "chain", "residue_number", "insertion_code", "residue", "prediction",
                                   "prob_0", "prob_1", "prob_2"]
    assert list(dict.fromkeys(frame["id"])) == ["1y1lA", "3ieyB"]  # input order, whatever the batches were
