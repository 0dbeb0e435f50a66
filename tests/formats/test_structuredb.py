"""StructureDB: the shipped subset, its loader, labels and the subset rule."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pa_geo.formats.structuredb import (MAX_ASA_TIEN2013, dssp8_to_ss3, load_structuredb,
                                         relative_sasa, subset_indices, write_structuredb_subset)
from pa_geo.errors import DatasetError
from tests.helpers import STRUCTUREDB

SOURCE = Path(__file__).resolve().parents[2] / "../shared/data/structuredb_sample.npz"


@pytest.fixture(scope="module")
def records():
    return load_structuredb(STRUCTUREDB)


def test_shipped_subset_is_small_and_complete(records):
    assert STRUCTUREDB.stat().st_size < 6_000_000
    assert len(records) == 619
    lengths = np.array([len(r.protein) for r in records])
    assert lengths.min() >= 40 and lengths.max() <= 400
    ids = [r.protein.id for r in records]
    assert len(set(ids)) == len(ids) and all("_" in i for i in ids)


def test_record_contents(records):
    r = records[0]
    p = r.protein
    L = len(p)
    assert p.id == "12AS_A" and p.chains == ["A"] and p.has_structure
    assert p.backbone.shape == (L, 4, 3) and p.backbone.dtype == np.float32 and np.isfinite(p.backbone).all()
    # real geometry: N-CA ~1.46 A, consecutive CA ~3.8 A
    assert abs(np.median(np.linalg.norm(p.backbone[:, 1] - p.backbone[:, 0], axis=-1)) - 1.46) < 0.05
    assert abs(np.median(np.linalg.norm(np.diff(p.ca, axis=0), axis=-1)) - 3.8) < 0.1
    assert p.residue_numbers[0] == 4 and (np.diff(p.residue_numbers) == 1).all()
    assert len(p.atoms) == 4 * L and (p.atoms.residue_index == np.repeat(np.arange(L), 4)).all()
    assert r.ss3.dtype == np.int64 and r.ss3.shape == (L,) and set(r.ss3.tolist()) <= {0, 1, 2}
    assert r.rsa.dtype == np.float32 and r.rsa.shape == (L,) and 0 <= r.rsa.min() and r.rsa.max() <= 1.5
    assert r.dssp8[:5] == "CHHHH" and r.ss3[:5].tolist() == [2, 0, 0, 0, 0]
    assert r.rsa[0] == pytest.approx(97 / MAX_ASA_TIEN2013["A"], rel=1e-6)  # first residue: Ala, 97 A^2


def test_label_maps():
    assert dssp8_to_ss3("HGIEBTSC- ").tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    rsa = relative_sasa("AGWX", np.array([129, 208, 0, 50], np.int16))
    assert rsa.tolist()[:3] == [1.0, 1.5, 0.0]  # G: 208/104 = 2.0 clipped to 1.5
    assert rsa[3] == pytest.approx(50 / np.mean(list(MAX_ASA_TIEN2013.values())), rel=1e-6)


def test_max_chains(records):
    few = load_structuredb(STRUCTUREDB, max_chains=5)
    assert [r.protein.id for r in few] == [r.protein.id for r in records[:5]]


def test_subset_rule():
    ids = np.array(["B_1", "A_1", "C_1", "D_1", "E_1", "F_1"])
    lengths = np.array([50, 39, 100, 401, 400, 40])
    # eligible by id: B(0), C(2), E(4), F(5) -> every 3rd: B, F -> source order
    assert subset_indices(ids, lengths).tolist() == [0, 5]


@pytest.mark.skipif(not SOURCE.is_file(), reason="shared StructureDB sample not present")
def test_shipped_file_is_the_documented_subset_of_the_source(tmp_path):
    n = write_structuredb_subset(SOURCE, tmp_path / "s.npz")
    assert n == 619
    with np.load(tmp_path / "s.npz") as a, np.load(STRUCTUREDB) as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    with np.load(SOURCE) as src:
        i = int(np.flatnonzero(src["ids"] == "12AS_A")[0])
        np.testing.assert_array_equal(src["coords"][: src["lengths"][i]][:, :4], load_structuredb(STRUCTUREDB, max_chains=1)[0]
                                      .protein.backbone)


def test_bad_files_raise_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_structuredb(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_structuredb(tmp_path / "junk.npz")
    with np.load(STRUCTUREDB) as d:
        arrays = {k: d[k] for k in d.files}
    np.savez(tmp_path / "nosasa.npz", **{k: v for k, v in arrays.items() if k != "sasa"})
    with pytest.raises(DatasetError, match="missing array.*sasa"):
        load_structuredb(tmp_path / "nosasa.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "sasa": arrays["sasa"][:-1]})
    with pytest.raises(DatasetError, match="do not match sum"):
        load_structuredb(tmp_path / "short.npz")
