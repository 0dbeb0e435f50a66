"""The ``ca_geometry_trees`` row: ``python -m pa_geo.demo.trees`` reads the structure experiment's example stores
through the demo's CLI, fits one model per task at the given learning rate, and reports the keys of a trained row
(metrics computed by the tasks' own metric sets, checked here against numpy); its row is written atomically and
reused like a trained row's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pa_geo.demo import trees
from pa_geo.demo.training import RunSpec, build_cli, run_all
from pa_geo.demo.trees import TREES, classification_metrics, experiment_arrays, fit_on_validation, regression_metrics

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "multitask" / "demo_ss8_rsa.yaml"


def _data_args(store: Path) -> list[str]:
    return ["--config", str(CONFIG), "--data.data_root", str(ROOT / "data"), "--data.max_records", "6",
            "--data.graph_cache", str(store)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Example stores of the first 6 chains of every split (built once)."""
    path = tmp_path_factory.mktemp("trees") / "examples"
    build_cli(_data_args(path)).datamodule.prepare_data()
    return path


def _spec(store: Path, run_dir: Path, seed: int = 0, lr: float = 0.1) -> RunSpec:
    args = _data_args(store) + TREES.row_args([], lr, 5, run_dir, seed, False)
    return RunSpec("structure", "ca_geometry_trees", seed, args, str(run_dir), threads=1, runner=TREES)


def test_trees_row_has_the_keys_and_values_of_a_trained_row(store, tmp_path, monkeypatch):
    spec = _spec(store, tmp_path / "seed0")
    assert spec.command.startswith("python -m pa_geo.demo.trees --config ")
    (row,) = run_all([spec], jobs=1)
    assert {"test/test/accuracy", "test/test/accuracy_macro", "test/test/q3", "test/demo_rsa/test/pearson",
            "test/demo_rsa/test/spearman", "test/demo_rsa/test/mae", "test/demo_rsa/test/rmse"} == set(row["test"])
    assert row["best_val"] == row["val"]["val/accuracy"] and row["monitor"] == "val/accuracy"
    assert (row["task"], row["learning_rate"], row["epochs"], row["threads"]) == ("demo_ss8", 0.1, 300, 1)
    assert row["train_time_s"] > 0 and row["trainable_params"] > 1000 and row["command"] == spec.command
    saved = json.loads((tmp_path / "seed0" / "row.json").read_text())
    assert saved["test"] == row["test"] and not list(tmp_path.glob("seed0/.*tmp"))

    # the same numbers from the arrays and numpy (the tasks' metric sets agree with a hand computation)
    dm = build_cli(_data_args(store)).datamodule
    ss8, rsa = experiment_arrays(dm, "demo_ss8"), experiment_arrays(dm, "demo_rsa")
    clf = fit_on_validation("classification", ss8["train"], ss8["valid"], 0, (0.1,))
    reg = fit_on_validation("regression", rsa["train"], rsa["valid"], 0, (0.1,))
    want = {f"test/test/{k}": v for k, v in classification_metrics(clf.predict(ss8["test"][0]), ss8["test"][1]).items()}
    want.update({f"test/demo_rsa/test/{k}": v for k, v in
                 regression_metrics(reg.predict(rsa["test"][0]), rsa["test"][1]).items()})
    for key in ("test/test/accuracy", "test/test/q3", "test/demo_rsa/test/pearson", "test/demo_rsa/test/mae",
                "test/demo_rsa/test/rmse", "test/demo_rsa/test/spearman"):
        assert row["test"][key] == pytest.approx(want[key], abs=1e-4), key
    assert row["trainable_params"] == clf.leaves + reg.leaves

    def no_refit(spec):  # the same command again: the finished row is reused, nothing refits
        raise AssertionError("refitted")

    monkeypatch.setattr(trees, "trees_run", no_refit)
    assert run_all([spec], jobs=1)[0]["test"] == row["test"]


def test_validation_only_runs_never_score_test(store, tmp_path):
    spec = _spec(store, tmp_path / "v", lr=0.05)
    spec.test = False
    (row,) = run_all([spec], jobs=1)
    assert row["test"] == {} and set(row["val"]) >= {"val/accuracy", "val/q3", "val/demo_rsa/pearson"}
    assert row["learning_rate"] == 0.05


def test_program_writes_its_row_and_refuses_other_arguments(store, tmp_path, capsys):
    out = tmp_path / "run"
    args = _data_args(store) + ["--seed", "1", "--learning-rate", "0.1", "--max-iter", "20", "--out", str(out),
                                "--no-test"]
    assert trees.main(args) == 0
    row = json.loads((out / "row.json").read_text())
    assert row["epochs"] == 20 and row["test"] == {} and row["seed"] == 1 and row["best_val"] > 0.3
    assert row["command"] == "python -m pa_geo.demo.trees " + " ".join(args)
    capsys.readouterr()
    assert trees.main(_data_args(store) + ["--trainer.max_epochs", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: python -m pa_geo.demo.trees: unexpected argument '--trainer.max_epochs' (give --config "
                   "and --data.* settings only)")
