"""The demo's tasks read the shipped data with grouped, disjoint splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pa_geo.demo  # noqa: F401 - registers the demo tasks
from pa_geo.tasks import get_task

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.skipif(not (DATA / "structuredb_subset.npz").exists(), reason="shipped data/ missing")
def test_demo_tasks_read_shipped_data() -> None:
    ss3, rsa = get_task("demo_ss3"), get_task("demo_rsa")
    assert (ss3.kind, rsa.kind, get_task("demo_solubility").kind) == ("residue", "residue", "protein")
    assert rsa.metrics[:2] == ["pearson", "mae"]
    splits = {s: ss3.load(DATA, s) for s in ss3.splits}
    ids = [set(r.id for r in recs) for recs in splits.values()]
    assert all(ids) and not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    entries = [set(i.split("_")[0] for i in s) for s in ids]
    assert not (entries[0] & entries[2])  # grouped by PDB entry
    rec = splits["valid"][0]
    assert rec.label.dtype == np.int64 and rec.label.shape == (len(rec.proteins[0]),)
    assert set(np.unique(rec.label)) <= {0, 1, 2} and rec.proteins[0].has_structure
    rrec = rsa.load(DATA, "valid")[0]
    assert rrec.id == rec.id and rrec.label.dtype == np.float32
    sol = get_task("demo_solubility")
    test = sol.load(DATA, "test")
    assert test and all(r.label in (0, 1) for r in test) and not test[0].proteins[0].has_structure
    total = sum(len(sol.load(DATA, s)) for s in sol.splits)
    assert total == 3230
