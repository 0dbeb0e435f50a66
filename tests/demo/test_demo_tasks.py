"""The demo's tasks read the shipped data with grouped, disjoint splits; structure tasks see CA traces only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pa_geo.formats.structuredb import load_structuredb
from pa_geo.demo.tasks import SS8_CLASSES, dssp8_labels
from pa_geo.io.traces import ca_trace
from pa_geo.errors import DatasetError
from pa_geo.tasks import get_task

DATA = Path(__file__).resolve().parents[2] / "data"
pytestmark = pytest.mark.skipif(not (DATA / "structuredb_subset.npz").exists(), reason="shipped data/ missing")


def test_demo_tasks_read_shipped_data() -> None:
    ss8, rsa = get_task("demo_ss8"), get_task("demo_rsa")
    assert (ss8.kind, rsa.kind, get_task("demo_solubility").kind) == ("residue", "residue", "protein")
    assert ss8.num_outputs == 8 and rsa.metrics[:2] == ["pearson", "mae"]
    splits = {s: ss8.load(DATA, s) for s in ss8.splits}
    ids = [set(r.id for r in recs) for recs in splits.values()]
    assert all(ids) and not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(map(len, ids)) == 619
    entries = [set(i.split("_")[0] for i in s) for s in ids]
    assert not (entries[0] & entries[2])  # grouped by PDB entry
    rec = splits["valid"][0]
    source = next(r for r in load_structuredb(DATA / "structuredb_subset.npz") if r.protein.id == rec.id)
    assert rec.label.dtype == np.int64 and rec.label.shape == (len(rec.proteins[0]),)
    assert "".join(SS8_CLASSES[i] for i in rec.label) == source.dssp8  # the 8 states, in DSSP's letters
    counts = np.bincount(np.concatenate([r.label for r in splits["train"]]), minlength=8)
    assert (counts > 0).all()  # every state occurs (I, the rarest, too)
    rrec = rsa.load(DATA, "valid")[0]
    assert rrec.id == rec.id and rrec.label.dtype == np.float32
    sol = get_task("demo_solubility")
    test = sol.load(DATA, "test")
    assert test and all(r.label in (0, 1) for r in test) and not test[0].proteins[0].has_structure
    assert sum(len(sol.load(DATA, s)) for s in sol.splits) == 3230


def test_structure_tasks_see_the_ca_trace_only() -> None:
    source = load_structuredb(DATA / "structuredb_subset.npz", max_chains=1)[0].protein
    for task in ("demo_ss8", "demo_ss3", "demo_rsa"):
        p = next(r for s in ("train", "valid", "test") for r in get_task(task).load(DATA, s) if r.id == source.id
                 ).proteins[0]
        assert np.isnan(p.backbone[:, [0, 2, 3]]).all() and np.array_equal(p.backbone[:, 1], source.backbone[:, 1])
        assert set(p.atoms.name) == {"CA"} and len(p.atoms) == len(p)
        assert p.sequence == source.sequence and np.array_equal(p.chain_breaks, source.chain_breaks)
    assert ca_trace(source).backbone.shape == source.backbone.shape


def test_unknown_dssp_letter_is_a_one_line_error() -> None:
    assert dssp8_labels("x", "HGIEBTSC").tolist() == list(range(8))
    with pytest.raises(DatasetError, match=r"^1ABC_A: DSSP letters \['-', 'P'\]"):
        dssp8_labels("1ABC_A", "HHP-C")
