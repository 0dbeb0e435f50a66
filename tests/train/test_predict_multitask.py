"""A multi-task checkpoint predicts every head of its primary task's kind (the encoder runs once), from a checkpoint
alone even where its tasks are not registered; column naming (``prediction_column``, ``derived_columns``); what a
task's structures were (``structure_input``) decides how prediction inputs are read."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch, Data

from pa_geo.io import read_structure
from pa_geo.io.traces import ca_trace, is_ca_trace
from pa_geo.tasks import get_task, unregister_task
from pa_geo.train.cli import build_cli
from pa_geo.train.module import PaGeoModule
from pa_geo.train.predict import input_datamodule, load_for_prediction, predict_from_checkpoint
from pa_geo.train.predict_inputs import CA_TRACE_REFUSED, PredictInputs
from pa_geo.train.prediction_columns import merge_task_frames, task_columns
from pa_geo.train.shared_batches import OncePerBatch
from tests.helpers import training as tk
from tests.helpers.pretrained import TEST_DATA, ca_only_copy
from tests.helpers.tables import PDB_DSSP

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def multitask_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Best checkpoint of a one-epoch fit of ttest_ss3 + ttest_rsa (auxiliary) on the one-hot cache."""
    work = tmp_path_factory.mktemp("multitask")
    tk.fill_cache(work / "cache")
    cfg = tk.config(work / "run", aux={"ttest_rsa": ("node", 1, 0.5)}, enable_checkpointing=True)
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cfg["trainer"]["callbacks"] = [{"class_path": "pa_geo.train.best_and_last.BestAndLastCheckpoint",
                                    "init_args": {"dirpath": str(work / "ckpt"), "monitor": "val/accuracy",
                                                  "mode": "max"}}]
    cli = build_cli(["--config", str(tk.write_config(work / "cfg.yaml", cfg))], run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    return work / "ckpt" / "best.ckpt"


def test_every_head_is_predicted_and_the_encoder_runs_once(multitask_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    summary = predict_from_checkpoint(multitask_ckpt, [PDB_DSSP / "1y1lA.pdb.gz"], out, progress=False)
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["id", "chain", "residue_number", "insertion_code", "residue", "prediction",
                                   "prob_0", "prob_1", "prob_2", "ttest_rsa"]
    assert summary.rows == len(read_structure(PDB_DSSP / "1y1lA.pdb.gz")) and frame["ttest_rsa"].notna().all()
    assert set(summary.seconds) == {"load", "read", "embed", "graph", "model", "write"}
    model = PaGeoModule.load_from_checkpoint(multitask_ckpt).eval()
    calls = []
    model.encoder.register_forward_hook(lambda *a: calls.append(1))
    data = input_datamodule(load_for_prediction(multitask_ckpt), [PDB_DSSP / "1y1lA.pdb.gz"], progress=False)
    data.setup("predict")
    batch = next(iter(data.predict_dataloader()))
    with torch.no_grad():
        outputs = model.predict_step(batch, 0)
    assert set(outputs) == {"ttest_ss3", "ttest_rsa"} and len(calls) == 1
    rsa = outputs["ttest_rsa"].reshape(-1).numpy()
    assert np.allclose(rsa, frame["ttest_rsa"].to_numpy(), atol=1e-5)


def test_a_checkpoint_predicts_without_its_tasks_registered(multitask_ckpt: Path, tmp_path: Path) -> None:
    saved = {t: get_task(t) for t in ("ttest_ss3", "ttest_rsa")}
    for name in saved:
        unregister_task(name)
    try:
        model = PaGeoModule.load_from_checkpoint(multitask_ckpt)
        assert set(model.specs) == {"ttest_ss3", "ttest_rsa"} and model.specs["ttest_rsa"].loader is None
        out = tmp_path / "p.csv"
        predict_from_checkpoint(multitask_ckpt, [PDB_DSSP / "1y1lA.pdb.gz"], out, progress=False)
        assert "ttest_rsa" in pd.read_csv(out).columns
    finally:
        tk._register()


def test_columns_are_named_by_task_options() -> None:
    spec = dataclasses.replace(get_task("ttest_ss3"), options={
        "class_names": ["H", "E", "C"], "prediction_column": "ss3",
        "derived_columns": {"helix": {"H": "yes", "E": "no", "C": "no"}}})
    aux = dataclasses.replace(get_task("ttest_rsa"), options={"prediction_column": "rsa"})
    primary = pd.DataFrame({"id": ["a", "a"], "residue_index": [0, 1], "prediction": ["H", "C"],
                            "prob_H": [0.8, 0.1], "prob_E": [0.1, 0.1], "prob_C": [0.1, 0.8]})
    assert list(task_columns(primary, spec, primary=True).columns) == [
        "id", "residue_index", "ss3", "helix", "prob_H", "prob_E", "prob_C"]
    merged = merge_task_frames({"p": primary, "r": pd.DataFrame({"id": ["a", "a"], "residue_index": [0, 1],
                                                                 "prediction": [0.2, 0.7]})},
                               {"p": spec, "r": aux}, "p")
    assert merged["helix"].tolist() == ["yes", "no"] and merged["rsa"].tolist() == [0.2, 0.7]
    unnamed = dataclasses.replace(get_task("ttest_ss3"), options={})
    assert "ttest_ss3_prob_H" in task_columns(primary, unnamed, primary=False).columns


def test_once_per_batch_reuses_the_output_for_the_same_batch_and_its_views() -> None:
    calls = []
    once = OncePerBatch(lambda x: calls.append(x) or len(calls))
    batch = Batch.from_data_list([Data(x=torch.zeros(3, 1)), Data(x=torch.zeros(2, 1))])
    view = copy.copy(batch)  # a task view shares batch.batch
    assert once(batch) == once(view) == 1
    assert once(Batch.from_data_list([Data(x=torch.zeros(3, 1))])) == 2


def test_structure_input_reads_ca_traces_or_refuses_them(tmp_path: Path) -> None:
    trace = ca_only_copy(TEST_DATA / "2cviA.pdb.gz", tmp_path)
    full = TEST_DATA / "2cviA.pdb.gz"
    assert is_ca_trace(read_structure(trace)) and not is_ca_trace(read_structure(full))
    assert not is_ca_trace(read_structure(TEST_DATA / "backbones_1mr1D_missing_atoms.pdb.gz"))
    spec = get_task("ttest_ss3")
    as_traces = PredictInputs([full, trace], dataclasses.replace(spec, options={"structure_input": "ca_trace"}))
    a, b = (r.proteins[0] for r in as_traces.records)
    assert np.array_equal(a.backbone, b.backbone, equal_nan=True) and np.isnan(a.backbone[:, [0, 2, 3]]).all()
    assert np.array_equal(a.backbone, ca_trace(read_structure(full)).backbone, equal_nan=True)
    backbone = PredictInputs([full, trace], dataclasses.replace(spec, options={"structure_input": "backbone"}))
    assert [r.id for r in backbone.records] == ["2cviA"]
    assert backbone.refused == [f"2cviA_ca: {CA_TRACE_REFUSED}"]


@pytest.mark.parametrize("task", ["demo_ss8", "demo_ss3", "demo_rsa"])
def test_demo_structure_tasks_predict_full_backbones_as_their_ca_traces(task: str) -> None:
    """The demo's structure models learned from CA traces (geom level without phi/psi, CA-trace frames): a
    full-backbone input file must reach them as its CA trace, not as the backbone they never saw."""
    full = TEST_DATA / "2cviA.pdb.gz"
    (record,) = PredictInputs([full], get_task(task)).records
    assert is_ca_trace(record.proteins[0])
    assert np.array_equal(record.proteins[0].backbone, ca_trace(read_structure(full)).backbone, equal_nan=True)
