"""``python -m pa_geo.demo.sweep``: the learning-rate grid over the demo's rows (validation only, each runner's own
grid, the chosen lr per experiment and model) and the settings mode (built-in or from a JSON file). The runs are
replaced by rows whose validation score is a known function of the run's arguments."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pa_geo.demo import sweep
from pa_geo.demo.run import experiment_args
from pa_geo.demo.training import FitRunner, build_cli
from pa_geo.demo.trees import TreesRunner

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
SCORE = {0.001: 0.60, 0.003: 0.70, 0.01: 0.65, 0.025: 0.80, 0.05: 0.85, 0.1: 0.82}  # validation score per lr


@pytest.fixture
def planned(monkeypatch, tmp_path):
    """Runs ``sweep.main`` without embedding or training; returns the specs it ran (and writes its JSON)."""
    specs = []

    def prepare(args, name):
        return build_cli(experiment_args(args, name)), []

    def run_all(todo, jobs):
        specs.extend(todo)
        rows = []
        for s in todo:
            lr = float(s.args[s.args.index("--model.lr" if isinstance(s.runner, FitRunner) else "--learning-rate") + 1])
            bump = 0.01 * s.seed + (0.1 if s.experiment == "solubility" and lr == 0.01 else 0.0)
            rows.append({"experiment": s.experiment, "model": s.model, "seed": s.seed, "best_val": SCORE[lr] + bump,
                         "monitor": "val/accuracy", "task": "demo_ss8" if s.experiment == "structure" else
                         "demo_solubility", "train_time_s": 1.0, "test": {}, **s.meta})
        return rows

    monkeypatch.setattr(sweep, "prepare", prepare)
    monkeypatch.setattr(sweep, "run_all", run_all)
    monkeypatch.chdir(tmp_path)
    return specs


def test_lr_grid_runs_each_row_at_each_rate_on_validation_only(planned, tmp_path, capsys):
    out = tmp_path / "results"
    assert sweep.main(["--lr-grid", "--models", "adapter", "ca_geometry_trees", "--seeds", "2", "--out", str(out),
                       "--extra=--data.batch_nodes 3000"]) == 0
    specs = planned
    assert all(not s.test for s in specs)  # never the test split
    fit = [s for s in specs if isinstance(s.runner, FitRunner)]
    trees = [s for s in specs if isinstance(s.runner, TreesRunner)]
    # adapter: 3 rates x 2 experiments x 2 seeds; trees: 3 rates x structure x 2 seeds
    assert len(fit) == 12 and len(trees) == 6
    assert sorted({s.args[s.args.index("--model.lr") + 1] for s in fit}) == ["0.001", "0.003", "0.01"]
    assert sorted({s.args[s.args.index("--learning-rate") + 1] for s in trees}) == ["0.025", "0.05", "0.1"]
    assert all(s.args[-2:] == ["--data.batch_nodes", "3000"] for s in fit)  # --extra: trained rows only
    assert all("--data.batch_nodes" not in s.args for s in trees)
    epochs = {s.experiment: s.args[s.args.index("--trainer.max_epochs") + 1] for s in fit}
    assert epochs == {"structure": "6", "solubility": "1"}  # the demo's epochs
    assert Path(fit[0].run_dir) == out / "runs" / "structure" / "sweep_lr" / "adapter" / "lr0.001" / "seed0"
    assert len({s.run_dir for s in specs}) == len(specs)
    result = json.loads((out / "sweep_lr.json").read_text())
    assert result["chosen"] == {"structure": {"adapter": 0.003, "ca_geometry_trees": 0.05},
                                "solubility": {"adapter": 0.01}}
    entry = next(e for e in result["summary"] if (e["experiment"], e["model"], e["lr"]) == ("structure", "adapter",
                                                                                            0.003))
    assert entry["values"] == [0.70, 0.71] and entry["mean"] == pytest.approx(0.705)
    assert entry["sd"] == pytest.approx(0.00707, abs=1e-4) and result["split"] == "valid"
    assert result["grids"]["ca_geometry_trees"] == [0.025, 0.05, 0.1]
    text = capsys.readouterr().out
    assert "0.7050 ± 0.0071" in text and "<- chosen" in text and "validation split only" in text


def test_lr_grid_values_and_the_trees_grid_are_options(planned, tmp_path):
    assert sweep.main(["--lr-grid", "1e-2", "--trees-lr-grid", "0.1", "--experiments", "structure", "--seeds", "1",
                       "--models", "mlp_probe", "ca_geometry_trees", "--out", str(tmp_path / "r")]) == 0
    assert [(s.model, s.meta["lr"]) for s in planned] == [("mlp_probe", 0.01), ("ca_geometry_trees", 0.1)]


def test_settings_from_a_file_on_the_adapter(planned, tmp_path):
    settings = tmp_path / "recipe.json"
    settings.write_text(json.dumps({"small batches": ["--data.batch_nodes", "2000"], "as is": []}))
    out = tmp_path / "results"
    assert sweep.main(["--settings-file", str(settings), "--out", str(out)]) == 0
    assert [(s.experiment, s.model, s.meta["setting"]) for s in planned] == [
        ("structure", "adapter", "small batches"), ("structure", "adapter", "as is")]
    assert planned[0].args[-2:] == ["--data.batch_nodes", "2000"] and not planned[0].test
    assert planned[0].args[planned[0].args.index("--trainer.max_epochs") + 1] == "4"  # the settings' 4 epochs
    result = json.loads((out / "sweep.json").read_text())
    assert [e["setting"] for e in result["summary"]] == ["small batches", "as is"]


def test_built_in_settings_still_run_by_name(planned, tmp_path):
    assert sweep.main(["--settings", "lr 1e-2", "merge sum", "--out", str(tmp_path / "r")]) == 0
    assert [s.meta["setting"] for s in planned] == ["lr 1e-2", "merge sum"]
    lr = planned[0].args  # the setting's lr comes after the row's own, so it wins
    assert lr.index("--model.lr") < len(lr) - 2 and lr[-2:] == ["--model.lr", "1e-2"]


@pytest.mark.parametrize("argv, message", [
    (["--settings", "nope"], "unknown setting(s) ['nope']"),
    (["--lr-grid", "--settings", "defaults"], "takes no --settings"),
    (["--models", "ca_geometry_trees"], "ca_geometry_trees is not a trained row"),
])
def test_refusals_are_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        sweep.main([*argv, "--out", str(tmp_path)])
    assert err.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


def test_settings_file_must_map_names_to_overrides(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    for text in ("[1, 2]", '{"a": "--model.lr 1"}', "{}", "not json"):
        bad.write_text(text)
        with pytest.raises(SystemExit):
            sweep.main(["--settings-file", str(bad), "--out", str(tmp_path)])
        assert f"--settings-file {bad}: " in capsys.readouterr().err
