"""``pa-geo demo`` end to end on a small slice of the shipped data with the real offline encoders; every row is a
shipped config + an ablation config + command-line overrides (what a user runs with ``pa-geo fit``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pa_geo.demo.models import CONFIGS, DEMO_MODELS, EXPERIMENTS, model_args
from pa_geo.demo.report import format_table, metric_value
from pa_geo.train.cli import build_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_demo_row_is_a_config_a_user_runs(experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(CONFIGS / EXPERIMENTS[experiment])]
    plain = build_cli(base, run=False)
    levels = plain.model.encoder.adapter.levels
    assert len(levels) == 2  # two embedding levels in both experiments
    for model in DEMO_MODELS:
        cli = build_cli(base + model_args(model, plain.config), run=False)
        enc, heads = cli.model.encoder, cli.model.heads
        reads = {t: getattr(enc, f"{h.reads}_dim") for t, h in heads.items()}
        assert all(h.in_dim == reads[t] for t, h in heads.items())  # widths bound from the encoder
        if model.endswith("probe"):
            assert type(enc).__name__ == "MeanEmbeddingEncoder" and enc.levels == levels
            hidden = [h.hidden_dim for h in heads.values()]
            assert hidden == ([None] * len(heads) if model == "linear_probe" else [128] * len(heads))
        else:
            has_cross = any(n.endswith(".cross") for n, _ in enc.adapter.named_modules())
            assert has_cross == (model != "no_cross_attention")
            assert all(p.name == ("none" if model == "global_pool_only" else "topk") for p in enc.predictor.pools)


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
        assert r["command"].startswith("pa-geo fit --config ") and str(CONFIGS) in r["command"]
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
