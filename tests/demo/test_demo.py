"""``pa-geo demo`` end to end on a small slice of the shipped data with the real offline encoders."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pa_geo.train.demo_models import DEMO_MODELS, build_demo_model
from pa_geo.train.demo import experiments
from pa_geo.train.demo_report import format_table, metric_value

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_every_demo_model_builds_for_both_experiments(model):
    for exp in experiments("unused").values():
        encoder, head, aux = build_demo_model(model, exp, d_model=32, hidden=32)
        assert set(aux) == set(exp.aux_outputs)
        in_dim = encoder.node_dim if exp.level == "node" else encoder.graph_dim
        first_linear = next(m for m in head.modules() if isinstance(m, torch.nn.Linear))
        assert first_linear.in_features == in_dim and first_linear.in_features > 0


def test_table_shows_each_primary_metric_only_in_its_own_column():
    rows = [{"experiment": "structure", "task": "demo_ss3", "model": "adapter", "trainable_params": 10,
             "train_time_s": 1.0, "test": {"test/test/accuracy": 0.9, "test/demo_rsa/test/pearson": 0.8}},
            {"experiment": "solubility", "task": "demo_solubility", "model": "adapter", "trainable_params": 10,
             "train_time_s": 1.0, "test": {"test/test/accuracy": 0.6}}]
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:2] == ["experiment", "model"]
    assert "demo_ss3 accuracy" in lines[0] and "demo_rsa pearson" in lines[0] and "demo_solubility accuracy" in lines[0]
    assert lines[2].count("0.9000") == 1 and "0.6000" not in lines[2]
    assert lines[3].count("0.6000") == 1 and "0.9000" not in lines[3]
    # the bar chart reads values through the same rule
    assert metric_value(rows[1], "demo_ss3", "test/test/accuracy") is None
    assert metric_value(rows[1], "demo_solubility", "test/test/accuracy") == 0.6
    assert metric_value(rows[0], "demo_rsa", "test/demo_rsa/test/pearson") == 0.8


def test_demo_runs_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pa_geo.cli", "demo", "--out", str(tmp_path / "results"),
           "--cache", str(tmp_path / "cache"), "--max-records", "10", "--solubility-max-records", "10",
           "--epochs", "2", "--solubility-epochs", "1", "--models", "adapter", "linear_probe", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "demo.json").read_text())
    rows = result["results"]
    assert [(r["experiment"], r["model"]) for r in rows] == [
        ("structure", "adapter"), ("structure", "linear_probe"),
        ("solubility", "adapter"), ("solubility", "linear_probe")]
    for r in rows:
        assert 0.0 <= r["test"]["test/test/accuracy"] <= 1.0 and r["trainable_params"] > 0
    assert "test/demo_rsa/test/pearson" in rows[0]["test"]  # the auxiliary task is reported too
    assert {e["backbone"] for e in result["embeddings"]} == {"near", "proteinmpnn"}
    for png in ("demo_curves.png", "demo_bars.png"):
        assert (tmp_path / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "demo_ss3 accuracy" in proc.stdout and "linear_probe" in proc.stdout
    # a second run reuses every cached embedding
    proc2 = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    again = json.loads((tmp_path / "results" / "demo.json").read_text())["embeddings"]
    assert all(e["embedded"] == 0 and e["cached"] > 0 for e in again)
