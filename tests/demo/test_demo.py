"""``pa-geo demo``: rows are shipped configs + one ablation config (what a user runs with ``pa-geo fit``); the table
reports mean +- sd over seeds with flags against the adapter; the bar chart has error bars; end to end on a small
slice of the shipped data with the real offline encoders, two runs at a time in worker processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pa_geo.demo.models import (ALL_MODELS, CONFIGS, DEMO_MODELS, EXPERIMENTS, FIT, MODELS, NN_LR, model_args,
                                 models_for)
from pa_geo.demo.report import FLAG_RULE, format_table, metric_value, plot_bars, summarize, table_columns
from pa_geo.demo.runners import RUNNERS, runner_of
from pa_geo.demo.training import FitRunner
from pa_geo.demo.trees import TreesRunner
from pa_geo.train.cli import build_cli

ROOT = Path(__file__).resolve().parents[2]
SS8, Q3, RSA = "test/test/accuracy", "test/test/q3", "test/demo_rsa/test/pearson"


def test_default_rows_and_the_full_grid():
    assert DEMO_MODELS == ("adapter", "mlp_probe", "summed_levels_transformer", "ca_geometry_trees")
    assert set(DEMO_MODELS) <= set(ALL_MODELS) and len(ALL_MODELS) == 18
    assert {"geometric_bias", "no_geom_level", "gcn_predictor"} <= set(ALL_MODELS)
    for name, m in MODELS.items():  # every trained row but the adapter is one shipped ablation config
        assert (m.ablation is None) == (name in ("adapter", "ca_geometry_trees"))
        assert m.ablation is None or (CONFIGS / "ablations" / f"{m.ablation}.yaml").is_file()
        assert isinstance(runner_of(name), TreesRunner if name == "ca_geometry_trees" else FitRunner)
        assert all(m.learning_rate(e) > 0 for e in models_for_experiments(name))
    assert RUNNERS.names() == ["fit", "trees"]
    assert "gvp" not in models_for("solubility", list(ALL_MODELS)) and "gvp" in models_for("structure", ["gvp"])
    assert models_for("solubility", ["ca_geometry_trees"]) == []  # coordinates only
    assert MODELS["adapter"].lr == NN_LR and MODELS["ca_geometry_trees"].learning_rate("structure") == 0.05


def models_for_experiments(model: str) -> list[str]:
    """The experiments ``model`` runs on."""
    return [e for e in EXPERIMENTS if models_for(e, [model])]


def test_each_row_runs_at_its_own_learning_rate():
    run_dir = Path("runs/structure/x/seed0")
    fit = runner_of("adapter").row_args(["--config", "a.yaml"], 0.003, 5, run_dir, 1, False)
    assert fit[:4] == ["--config", "a.yaml", "--model.lr", "0.003"] and "--trainer.max_epochs" in fit
    assert fit[fit.index("--seed_everything") + 1] == "1" and str(run_dir) in fit
    trees = runner_of("ca_geometry_trees").row_args([], 0.025, 5, run_dir, 2, False)
    assert trees == ["--seed", "2", "--learning-rate", "0.025", "--max-iter", "300", "--out", str(run_dir)]
    assert runner_of("adapter").program == "pa-geo fit"
    assert runner_of("ca_geometry_trees").program == "python -m pa_geo.demo.trees"


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_default_row_is_a_config_a_user_runs(experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(CONFIGS / EXPERIMENTS[experiment])]
    plain = build_cli(base, run=False)
    levels = plain.model.encoder.adapter.levels
    assert len([f for f in levels if f.startswith("emb_")]) == 2  # two embedding levels in both experiments
    assert ("geom" in levels) == (experiment == "structure")  # + the CA geometry where there are coordinates
    kinds = {"adapter": "ProteinAdapter", "mlp_probe": "MeanEmbeddingEncoder",
             "summed_levels_transformer": "SummedLevelsTransformer", "esm_gearnet": "GearNetEncoder"}
    for model in [m for m in DEMO_MODELS if MODELS[m].runner == FIT]:
        args = model_args(model, plain.config)
        assert args[:1] == [] or args[0] == "--config"  # the ablation's config, nothing else
        cli = build_cli(base + args, run=False)
        enc = cli.model.encoder
        assert type(enc.adapter).__name__ == kinds[model]
        assert all(h.in_dim == getattr(enc, f"{h.reads}_dim") for h in cli.model.heads.values())
    linear = model_args("linear_probe", plain.config)
    assert ("--model.aux_heads" in linear) == (experiment == "structure")  # aux heads linear too


def _rows() -> list[dict]:
    rows = []
    for model, ss8, rsa in [("adapter", [0.70, 0.71, 0.72], [0.60, 0.61, 0.62]),
                            ("mlp_probe", [0.60, 0.61, 0.62], [0.605, 0.615, 0.61]),
                            ("esm_gearnet", [0.74, 0.76, 0.81], [0.70, 0.71, 0.72])]:
        for seed, (a, b) in enumerate(zip(ss8, rsa)):
            rows.append({"experiment": "structure", "task": "demo_ss8", "model": model, "seed": seed,
                         "trainable_params": 1000, "train_time_s": 10.0 + seed, "epochs": 4,
                         "test": {SS8: a, Q3: a + 0.1, RSA: b, "test/test/accuracy_macro": 0.3,
                                  "test/demo_rsa/test/mae": 0.1}, "metrics_csv": "none.csv"})
    rows.append({"experiment": "solubility", "task": "demo_solubility", "model": "adapter", "seed": 0,
                 "trainable_params": 10, "train_time_s": 1.0, "epochs": 4, "test": {SS8: 0.6},
                 "metrics_csv": "none.csv"})
    return rows


def test_table_reports_mean_sd_and_flags_against_the_adapter():
    rows = _rows()
    summary = summarize(rows)
    lines = format_table(summary, rows).splitlines()
    assert lines[0].split()[:2] == ["experiment", "model"]
    assert "demo_ss8 accuracy" in lines[0] and "demo_rsa pearson" in lines[0] and "train s/run" in lines[0]
    # Q8, then the task's reported q3, then the auxiliary task's primary metric (not its mae)
    assert [c for _, c in table_columns(rows)] == [SS8, Q3, RSA, SS8]
    assert lines[0].index("demo_ss8 accuracy") < lines[0].index("demo_ss8 q3") < lines[0].index("demo_rsa pearson")
    assert "demo_rsa mae" not in lines[0] and "0.8100 ± 0.0100" in lines[2]
    adapter, probe, gearnet, sol = lines[2:6]
    assert "0.7100 ± 0.0100" in adapter and "(" not in adapter.split("0.7100")[1].split("±")[0]
    assert "0.6100 ± 0.0100 (-)" in probe  # 0.10 below, sd 0.01: flagged worse
    assert "0.6100 ± 0.0050" in probe and "0.6100 ± 0.0050 (" not in probe  # RSA: same mean, not flagged
    assert "0.7700 ± 0.0361 " in gearnet  # 0.06 above but sd 0.036: not flagged
    assert "0.7100 ± 0.0100 (+)" in gearnet  # RSA 0.10 above
    assert sol.split()[:2] == ["solubility", "adapter"] and "0.6000 ± 0.0000" in sol and " 11" not in sol
    assert lines[-1].endswith(FLAG_RULE) and "3 seed(s)" in lines[-1]
    entry = next(e for e in summary if e["model"] == "mlp_probe")
    assert entry["train_time_s"] == 11.0 and entry["metrics"][f"demo_ss8|{SS8}"]["values"] == [0.60, 0.61, 0.62]
    assert metric_value(rows[-1], "demo_ss8", SS8) is None and metric_value(rows[-1], "demo_solubility", SS8) == 0.6


def test_bar_chart_draws_error_bars_and_seeds(tmp_path, monkeypatch):
    import matplotlib.axes

    calls = []
    real_bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", lambda self, x, h, **kw: calls.append((list(h), kw.get("yerr")))
                        or real_bar(self, x, h, **kw))
    rows = _rows()
    plot_bars(summarize(rows), rows, tmp_path / "bars.png")
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heights, errors = calls[0]  # first panel: demo_ss8 accuracy of adapter, mlp_probe, esm_gearnet
    assert heights == pytest.approx([0.71, 0.61, 0.77]) and errors == pytest.approx([0.01, 0.01, 0.0360555], 1e-4)


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out, cache = tmp_path / "results", tmp_path / "cache"
    common = [sys.executable, "-m", "pa_geo.cli", "demo", "--quick", "--out", str(out), "--cache", str(cache),
              "--max-records", "5", "--solubility-max-records", "8", "--threads", "1"]
    cmd = common + ["--models", "adapter", "mlp_probe", "ca_geometry_trees", "--seeds", "2", "--jobs", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "demo.json").read_text())
    rows = result["results"]
    plan = [("structure", m) for m in ("adapter", "mlp_probe", "ca_geometry_trees")] + \
        [("solubility", m) for m in ("adapter", "mlp_probe")]  # the trees need coordinates
    assert [(r["experiment"], r["model"], r["seed"]) for r in rows] == [(e, m, s) for e, m in plan for s in (0, 1)]
    for r in rows:
        assert 0.0 <= r["test"]["test/test/accuracy"] <= 1.0 and r["trainable_params"] > 0
        assert r["learning_rate"] == MODELS[r["model"]].learning_rate(r["experiment"])
        if r["model"] == "ca_geometry_trees":  # its own program, in the same worker pool, at its thread share
            assert r["command"].startswith("python -m pa_geo.demo.trees --config ") and r["epochs"] == 300
            assert f"--learning-rate {r['learning_rate']:g}" in r["command"] and r["threads"] == 1
            assert r["best_val"] == r["val"]["val/accuracy"] and r["train_time_s"] > 0
        else:
            assert r["command"].startswith("pa-geo fit --config ") and r["epochs"] == 1
            assert f"--model.lr {r['learning_rate']:g}" in r["command"]
        assert str(CONFIGS) in r["command"]
        assert "--trainer.accelerator" not in r["command"]  # the configs' accelerator: auto
    assert all(RSA in r["test"] and Q3 in r["test"] for r in rows if r["experiment"] == "structure")
    assert {e["backbone"] for e in result["embeddings"]} == {"near", "proteinmpnn_ca"}
    assert [(s["experiment"], s["model"], s["seeds"]) for s in result["summary"]] == [(e, m, [0, 1]) for e, m in plan]
    assert result["jobs"] == 2 and result["seeds"] == 2 and "±" in result["table"]
    for png in ("demo_curves.png", "demo_bars.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "demo_ss8 accuracy" in proc.stdout and "demo_ss8 q3" in proc.stdout and "mlp_probe" in proc.stdout
    assert "[demo] python -m pa_geo.demo.trees --config " in proc.stdout  # printed like the pa-geo fit lines
    again = subprocess.run(common + ["--experiments", "structure", "--models", "mlp_probe", "ca_geometry_trees",
                                     "--seeds", "1", "--jobs", "2"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    embedded = json.loads((out / "demo.json").read_text())["embeddings"]
    assert all(e["embedded"] == 0 and e["cached"] > 0 for e in embedded)  # the second run reuses the cache
    assert "2 runs reused, 0 to train" in again.stdout  # both rows, the trees' too, from their row.json


def test_finished_runs_are_reused_only_for_the_same_command(tmp_path, monkeypatch):
    from pa_geo.demo import training

    trained = []

    def fake_train(spec):
        trained.append(spec.model)
        return {"experiment": spec.experiment, "model": spec.model, "seed": spec.seed, "train_time_s": 1.0,
                "train_cpu_s": 1.0, "epochs": 1, "best_val": 0.5, "test": {SS8: 0.5},
                "command": f"pa-geo fit {' '.join(spec.args)}"}

    monkeypatch.setattr(training, "train_run", fake_train)
    specs = [training.RunSpec("structure", m, 0, ["--config", f"{m}.yaml"], str(tmp_path / m)) for m in ("a", "b")]
    assert [r["model"] for r in training.run_all(specs, jobs=1)] == ["a", "b"] and trained == ["a", "b"]
    assert json.loads((tmp_path / "a" / "row.json").read_text())["test"] == {SS8: 0.5}
    trained.clear()
    specs[1].args.append("--trainer.max_epochs=2")  # another command in b's folder: b trains again
    assert [r["model"] for r in training.run_all(specs, jobs=1)] == ["a", "b"] and trained == ["b"]
    (tmp_path / "a" / "row.json").write_text("{truncated")  # a damaged row is a run to redo, not an error
    trained.clear()
    training.run_all(specs, jobs=1)
    assert trained == ["a"]
