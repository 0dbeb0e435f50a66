"""The task registry: PEER's 17 tasks with TorchDrug's split names, ATOM3D tasks, task kinds, errors."""
from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pa_geo.errors import ConfigError
from pa_geo.tasks import available_tasks, get_kind, get_task, register_task
from pa_geo.tasks import unregister_task
from pa_geo.tasks.spec import TaskSpec

PEER_SPLITS = {
    "fluorescence": ["train", "valid", "test"], "stability": ["train", "valid", "test"],
    "beta_lactamase": ["train", "valid", "test"], "solubility": ["train", "valid", "test"],
    "aav": ["train", "valid", "test"], "thermostability": ["train", "valid", "test"],
    "gb1": ["train", "valid", "test"], "subcellular_localization": ["train", "valid", "test"],
    "binary_localization": ["train", "valid", "test"], "contact": ["train", "valid", "test"],
    "fold": ["train", "valid", "test_fold_holdout", "test_family_holdout", "test_superfamily_holdout"],
    "secondary_structure": ["train", "valid", "cb513", "ts115", "casp12"],
    "yeast_ppi": ["train", "valid", "test", "cross_species_test"],
    "human_ppi": ["train", "valid", "test", "cross_species_test"],
    "ppi_affinity": ["train", "valid", "test"], "pdbbind": ["train", "valid", "test"],
    "bindingdb": ["train", "valid", "holdout_test", "random_test"],  # PEER tests on holdout_test
}
PEER_PRIMARY = {
    "fluorescence": "spearman", "stability": "spearman", "beta_lactamase": "spearman", "aav": "spearman",
    "thermostability": "spearman", "gb1": "spearman", "solubility": "accuracy",
    "subcellular_localization": "accuracy", "binary_localization": "accuracy", "fold": "accuracy",
    "secondary_structure": "accuracy", "contact": "contact_precision_at_l5", "yeast_ppi": "accuracy",
    "human_ppi": "accuracy", "ppi_affinity": "rmse", "pdbbind": "rmse", "bindingdb": "rmse",
}


def test_all_17_peer_tasks_with_exact_splits_and_metrics() -> None:
    assert len(PEER_SPLITS) == 17
    for name, splits in PEER_SPLITS.items():
        spec = get_task(name)
        assert spec.splits == splits, name
        assert spec.primary_metric == PEER_PRIMARY[name], name
        assert spec.higher_is_better == (PEER_PRIMARY[name] != "rmse"), name
        assert spec.train_split == "train" and spec.valid_split == "valid"


def test_label_types_and_widths() -> None:
    assert (get_task("fold").label_type, get_task("fold").num_outputs) == ("multiclass", 1195)
    assert get_task("subcellular_localization").num_outputs == 10
    ss = get_task("secondary_structure")
    assert (ss.level, ss.num_outputs, ss.test_splits) == ("node", 3, ["cb513", "ts115", "casp12"])
    assert get_task("contact").level == "residue_pair" and get_task("contact").options["min_separation"] == 6
    assert get_task("human_ppi").input_kind == "pair" and get_task("bindingdb").input_kind == "ligand"


def test_atom3d_tasks() -> None:
    for name in ("lba_30", "lba_60", "psr", "msp", "atom3d_ppi", "res"):
        assert name in available_tasks()
    assert get_task("lba_30").options["split_dir"] == "split-by-sequence-identity-30"
    assert get_task("lba_60").options["split_dir"] == "split-by-sequence-identity-60"
    assert get_task("lba").name == "lba_30"  # alias
    assert get_task("lba_30").metrics[:3] == ["rmse", "pearson", "spearman"]
    assert get_task("psr").metrics[:2] == ["per_target_spearman", "spearman"]
    assert get_task("msp").primary_metric == "auroc" and get_task("atom3d_ppi").primary_metric == "auroc"
    assert get_task("res").splits == ["train", "val", "test"] and get_task("res").num_outputs == 20


def test_every_task_has_its_kind() -> None:
    expected = {"fluorescence": "protein", "fold": "protein", "psr": "protein", "secondary_structure": "residue",
                "res": "protein", "contact": "contact", "human_ppi": "protein_pair", "ppi_affinity": "protein_pair",
                "msp": "mutation", "atom3d_ppi": "interface", "pdbbind": "ligand", "lba_30": "ligand"}
    for name, kind in expected.items():
        assert get_task(name).kind == kind, name
    for name in available_tasks():
        assert get_kind(get_task(name)).name == get_task(name).kind
    explicit = TaskSpec("k", "pair", "graph", "binary", 1, ["auroc"], "auroc", ["a", "b", "c"], kind="mutation")
    assert explicit.kind == "mutation"
    with pytest.raises(ConfigError, match="no task kind fits input 'pair' at level 'node'"):
        register_task(TaskSpec("pair_nodes", "pair", "node", "binary", 1, ["auroc"], "auroc", ["a", "b", "c"]))
    with pytest.raises(ConfigError, match="unknown task kind 'protien'.*did you mean 'protein'"):
        register_task(dataclasses.replace(explicit, name="typo_kind", kind="protien"))


def test_demo_tasks_come_from_the_entry_point_when_a_name_is_looked_up() -> None:
    code = ("import sys; import pa_geo.tasks as t; loaded = 'pa_geo.demo' in sys.modules; "
            "held = sorted(n for n in t.TASKS._items if n.startswith('demo_')); t.get_task('demo_ss8'); "
            "print(loaded, held, sorted(n for n in t.available_tasks() if n.startswith('demo_')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False [] ['demo_rsa', 'demo_solubility', 'demo_ss3', 'demo_ss8']"


def test_unknown_task_is_one_line_listing_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_task("flourescence")
    msg = str(err.value)
    assert "\n" not in msg and "'flourescence'" in msg and "fluorescence" in msg and "bindingdb" in msg


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no split 'test'; splits: train, valid, cb513, ts115, casp12"):
        get_task("secondary_structure").load(tmp_path, "test")


def test_get_task_returns_independent_copies() -> None:
    a = get_task("stability")
    a.options["target_stats"] = (1.0, 2.0)
    a.metrics.append("r2")
    b = get_task("stability")
    assert "target_stats" not in b.options and "r2" not in b.metrics


def test_specs_pickle_for_worker_processes() -> None:
    for name in available_tasks():
        spec = pickle.loads(pickle.dumps(get_task(name)))
        assert spec.name == name and callable(spec.loader)


def test_register_custom_task_and_validation() -> None:
    spec = TaskSpec("my_task_x", "sequence", "graph", "regression", 1, ["mae"], "mae", ["train", "valid", "test"],
                    loader=lambda root, split: [])
    register_task(spec)
    try:
        assert "my_task_x" in available_tasks() and get_task("my_task_x").load(".", "test") == []
        register_task(spec)  # the same spec again: a no-op
        with pytest.raises(ConfigError, match="already registered"):
            register_task(dataclasses.replace(spec))
        register_task(spec, overwrite=True)
    finally:
        unregister_task("my_task_x")
    assert "my_task_x" not in available_tasks()
    bad = TaskSpec("bad_task", "sequence", "graph", "regression", 1, ["mae"], "rmse", ["train", "valid", "test"])
    with pytest.raises(ConfigError, match="primary metric 'rmse'"):
        register_task(bad)
    with pytest.raises(ConfigError, match="splits must be"):
        register_task(TaskSpec("bad_task", "sequence", "graph", "regression", 1, ["mae"], "mae", ["train", "test"]))


def test_reported_metrics_are_among_the_metrics_and_copied() -> None:
    bad = TaskSpec("bad_task", "sequence", "graph", "regression", 1, ["mae"], "mae", ["train", "valid", "test"],
                   reported_metrics=["rmse"])
    with pytest.raises(ConfigError, match=r"^task 'bad_task': reported metric\(s\) \['rmse'\] not in \['mae'\]$"):
        register_task(bad)
    a = get_task("demo_ss8")
    a.reported_metrics.append("accuracy_macro")
    a.options["class_names"].append("X")
    b = get_task("demo_ss8")
    assert b.reported_metrics == ["q3"] and b.options["class_names"] == list("HGIEBTSC")
    assert get_task("demo_ss3").options["class_names"] == ["H", "E", "C"]
