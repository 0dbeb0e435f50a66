"""``scripts/train_pretrained.py``: the split rules on the real StructureDB sample, a ``--quick`` run end to end
(data folder, split, both variants trained, tested, trees, independent chains, checkpoints, JSONs, card; nothing
written into the package), and the shipped card being the one its JSONs give."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pa_geo.datasets.splits import SPLIT_NAMES
from pa_geo.formats.structuredb import load_structuredb, write_structuredb_subset
from pa_geo.pretrained import get_model
from pa_geo.pretrained.registry import FILES
from pa_geo.tables.similarity_split import SplitParams, read_split_file
from pa_geo.train.checkpoint_meta import META_KEY
from pa_geo.train.checkpoints import load_checkpoint
from tests.helpers import REPO, STRUCTUREDB, subprocess_env
from tests.helpers.pretrained import PDB_DSSP

SCRIPTS = REPO / "scripts"
SAMPLE = REPO.parent / "shared" / "data" / "structuredb_sample.npz"


def script_module(name: str) -> ModuleType:
    """``scripts/<name>.py`` loaded by file location (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return sys.modules[name]


def test_split_keeps_the_independent_chains_and_their_relatives_out() -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"the StructureDB sample is not in this checkout's shared data ({SAMPLE.name})")
    data = script_module("pretrained_data")
    sample = load_structuredb(SAMPLE)
    assert data.subset_check(sample, STRUCTUREDB) == {"file": STRUCTUREDB.name, "chains": 619, "in_sample": 619,
                                                       "is_subset": True}
    independent = data.independent_chains(PDB_DSSP)
    assert len(independent) == 50
    result = data.make_split(sample, independent, SplitParams(method="kmer"))
    held = {i[:4].upper() for i in independent}
    assert {"1OR4_B", "3Q4O_A"} <= set(result.excluded)
    assert not {data.entry_of(i) for i in result.split} & held
    assert set(result.split) | set(result.excluded) == {r.protein.id for r in sample}
    split_of_entry: dict[str, set[str]] = {}
    split_of_group: dict[str, set[str]] = {}
    for rid, split in result.split.items():
        split_of_entry.setdefault(data.entry_of(rid), set()).add(split)
        split_of_group.setdefault(result.group[rid], set()).add(split)
    assert all(len(s) == 1 for s in split_of_entry.values()) and all(len(s) == 1 for s in split_of_group.values())
    sizes = {k: v["chains"] for k, v in result.counts.items()}
    assert abs(sizes["train"] / len(result.split) - 0.8) < 0.02 and min(sizes.values()) > 150


@pytest.mark.slow
def test_quick_run_writes_split_models_metrics_and_card(tmp_path: Path) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"the StructureDB sample is not in this checkout's shared data ({SAMPLE.name})")
    tiny = tmp_path / "tiny.npz"
    assert write_structuredb_subset(SAMPLE, tiny, min_length=40, max_length=60, step=2) == 39
    before = {p.name: p.stat().st_mtime_ns for p in FILES.glob("*")} if FILES.is_dir() else {}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "train_pretrained.py"), "--quick", "--structuredb",
                           str(tiny), "--out", str(out), "--cache", str(tmp_path / "cache")], cwd=tmp_path,
                          capture_output=True, text=True, env=subprocess_env(PYTHONWARNINGS="ignore"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ({p.name: p.stat().st_mtime_ns for p in FILES.glob("*")} if FILES.is_dir() else {}) == before
    assignment, header = read_split_file(out / "data" / "split.csv")
    assert len(assignment) == 39 and set(assignment.values()) == set(SPLIT_NAMES) and header["method"].startswith("kmer")
    for name in ("ss8-rsa", "ss8-rsa-ca"):
        metrics = json.loads((out / f"{name}.json").read_text())
        assert metrics["quick"] and metrics["input_kind"] == get_model(name).input_kind
        assert set(metrics["model"]["shipped_seed"]) >= {"q8", "q3", "recall", "rsa_pearson", "seed", "best_val"}
        assert set(metrics["trees"]["mean"]) >= {"q8", "q3", "rsa_pearson", "recall_H"}
        assert metrics["independent"]["chains"] == 2 and metrics["data"]["licence"]
        assert "../" not in metrics["recipe"]["command"].split("--data.data_root")[0]
        checkpoint = load_checkpoint(out / f"{name}.ckpt")
        assert "optimizer_states" not in checkpoint and checkpoint[META_KEY]["task"]["options"][
            "structure_input"] == get_model(name).input_kind
    card = (out / "ss8-rsa.md").read_text()
    assert card.startswith("# Model card") and "A smoke run" in card and "| `ss8-rsa-ca` |" in card


def test_the_card_is_written_from_the_shipped_metrics() -> None:
    names = ("ss8-rsa", "ss8-rsa-ca")
    if not all(get_model(n).installed for n in names):
        pytest.skip("the shipped checkpoints are not in pa_geo/pretrained/checkpoints yet")
    card = script_module("pretrained_card")
    results = {n: get_model(n).metrics() for n in names}
    assert (REPO / card.CARD_PATH).read_text() == card.render_card(results), \
        "docs/models/ss8-rsa.md differs from what the shipped JSONs give: rerun scripts/train_pretrained.py --ship"
