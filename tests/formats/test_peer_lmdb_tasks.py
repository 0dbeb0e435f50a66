"""PEER LMDB tasks read back from small LMDBs written exactly like the releases (TAPE / TorchDrug layout)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import lmdb
import numpy as np
import pytest

from pa_geo.formats.peer import PEER_LMDB_SOURCES, contact_map, load_peer_lmdb
from pa_geo.formats.record_checks import DatasetWarning
from pa_geo.formats.tape_lmdb import read_tape_lmdb, write_tape_lmdb
from pa_geo.errors import DatasetError
from pa_geo.tasks import get_task

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQLGA", "MVLSPADKTNVKAAWGKVGAHAGEYG"]


def _write(root: Path, task: str, split: str, records: list[dict]) -> None:
    path = root / PEER_LMDB_SOURCES[task].pattern.format(split=split)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tape_lmdb(path, records)


def test_fluorescence_tape_records(tmp_path: Path) -> None:
    recs = [{"primary": s, "protein_length": len(s), "log_fluorescence": np.array([1.5 + i], np.float32),
             "num_mutations": i, "id": f"gfp{i}".encode()} for i, s in enumerate(SEQS)]
    _write(tmp_path, "fluorescence", "valid", recs)
    out = get_task("fluorescence").load(tmp_path, "valid")
    assert [r.id for r in out] == ["gfp0", "gfp1", "gfp2"]
    assert [r.label for r in out] == [1.5, 2.5, 3.5]
    assert [r.proteins[0].sequence for r in out] == SEQS
    assert not out[0].proteins[0].has_structure


@pytest.mark.parametrize("task,field,values,expected", [
    ("stability", "stability_score", [np.array([0.7]), np.array([-0.2]), np.array([1.1])], [0.7, -0.2, 1.1]),
    ("beta_lactamase", "scaled_effect1", [0.1, 0.9, 0.5], [0.1, 0.9, 0.5]),
    ("solubility", "solubility", [1, 0, 1], [1, 0, 1]),
    ("subcellular_localization", "localization", [9, 0, 4], [9, 0, 4]),
    ("binary_localization", "localization", [np.int64(1), np.int64(0), np.int64(0)], [1, 0, 0]),
    ("fold", "fold_label", [1194, 3, 0], [1194, 3, 0]),
])
def test_graph_level_tasks(tmp_path: Path, task: str, field: str, values: list, expected: list) -> None:
    _write(tmp_path, task, "train", [{"primary": s, field: v} for s, v in zip(SEQS, values)])
    out = get_task(task).load(tmp_path, "train")
    assert [r.label for r in out] == expected
    assert all(type(r.label) is type(expected[0]) for r in out)
    assert [r.id for r in out] == [f"{task}/train/{i}" for i in range(3)]


def test_fold_holdout_split_names(tmp_path: Path) -> None:
    _write(tmp_path, "fold", "test_superfamily_holdout", [{"primary": SEQS[0], "fold_label": 7}])
    (rec,) = get_task("fold").load(tmp_path, "test_superfamily_holdout")
    assert rec.label == 7
    assert (tmp_path / "remote_homology" / "remote_homology_test_superfamily_holdout.lmdb").is_dir()


def test_secondary_structure_labels_and_mask(tmp_path: Path) -> None:
    s = SEQS[1]
    ss3 = np.arange(len(s)) % 3
    mask = np.ones(len(s), bool)
    mask[[0, 5]] = False
    _write(tmp_path, "secondary_structure", "cb513",
           [{"primary": s, "ss3": ss3, "ss8": ss3, "valid_mask": mask.astype(np.float32), "id": "d1abc"}])
    (rec,) = get_task("secondary_structure").load(tmp_path, "cb513")
    assert rec.label.dtype == np.int64 and rec.label.tolist() == ss3.tolist()
    assert rec.label_mask.dtype == bool and rec.label_mask.tolist() == mask.tolist()


def test_secondary_structure_length_mismatch(tmp_path: Path) -> None:
    _write(tmp_path, "secondary_structure", "ts115",
           [{"primary": SEQS[1], "ss3": np.zeros(3, np.int64), "valid_mask": np.ones(3)}])
    with pytest.raises(DatasetError, match=r"secondary_structure_ts115.lmdb\[0\]: ss3 / valid_mask lengths 3 / 3"):
        get_task("secondary_structure").load(tmp_path, "ts115")


def test_contact_map_from_tertiary(tmp_path: Path) -> None:
    L = 10
    coords = np.zeros((L, 3))
    coords[:, 0] = np.arange(L) * 3.8  # a straight CA trace: i, j in contact iff 3.8 |i-j| < 8
    coords[4] = np.nan
    valid = np.ones(L, bool)
    valid[7] = False
    _write(tmp_path, "contact", "test", [{"primary": "A" * L, "tertiary": coords, "valid_mask": valid}])
    with pytest.warns(DatasetWarning, match=r"masked 1 label positions \(non-finite tertiary coordinates"):
        (rec,) = get_task("contact").load(tmp_path, "test")
    i, j = np.indices((L, L))
    expected = (np.abs(i - j) <= 2) & (i != 4) & (j != 4)
    assert rec.label.dtype == bool and (rec.label == expected).all()
    assert rec.label_mask.tolist() == [k not in (4, 7) for k in range(L)]


def test_contact_map_helper() -> None:
    c = np.array([[0, 0, 0], [7.9, 0, 0], [8.0, 0, 0]], np.float32)
    assert contact_map(c).tolist() == [[True, True, False], [True, True, True], [False, True, True]]


@pytest.mark.parametrize("task,split", [("yeast_ppi", "cross_species_test"), ("human_ppi", "test"),
                                        ("ppi_affinity", "valid")])
def test_protein_pair_tasks(tmp_path: Path, task: str, split: str) -> None:
    _write(tmp_path, task, split, [{"primary_1": SEQS[0], "primary_2": SEQS[1], "interaction": 1},
                                   {"primary_1": SEQS[2], "primary_2": SEQS[0], "interaction": 0}])
    out = get_task(task).load(tmp_path, split)
    assert [[p.sequence for p in r.proteins] for r in out] == [[SEQS[0], SEQS[1]], [SEQS[2], SEQS[0]]]
    assert [r.label for r in out] == [1, 0]
    assert out[0].proteins[0].id.endswith("/A") and out[0].proteins[1].id.endswith("/B")


@pytest.mark.parametrize("task,split", [("pdbbind", "test"), ("bindingdb", "holdout_test")])
def test_protein_ligand_tasks(tmp_path: Path, task: str, split: str) -> None:
    _write(tmp_path, task, split, [{"target": SEQS[2], "drug": "CC(=O)Oc1ccccc1C(=O)O", "affinity": 6.25}])
    (rec,) = get_task(task).load(tmp_path, split)
    assert rec.label == 6.25 and rec.extra["smiles"] == "CC(=O)Oc1ccccc1C(=O)O"
    assert rec.proteins[0].sequence == SEQS[2] and rec.ligand is None


def test_bindingdb_lmdb_names() -> None:
    assert PEER_LMDB_SOURCES["bindingdb"].pattern.format(split="random_test") == "BindingDB_Kd_random_test.lmdb"
    assert PEER_LMDB_SOURCES["pdbbind"].pattern.format(split="train") == "pdbind/pdbind_train.lmdb"


def test_root_may_be_the_task_folder(tmp_path: Path) -> None:
    _write(tmp_path, "stability", "test", [{"primary": SEQS[0], "stability_score": [0.25]}])
    (rec,) = load_peer_lmdb("stability", tmp_path / "stability", "test")
    assert rec.label == 0.25


def test_missing_lmdb_names_expected_place_and_source(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        get_task("human_ppi").load(tmp_path, "cross_species_test")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "human_ppi" / "human_ppi_cross_species_test.lmdb") in msg
    assert "ppidata/human_ppi.zip" in msg


def test_missing_field_names_record(tmp_path: Path) -> None:
    _write(tmp_path, "fluorescence", "train", [{"primary": SEQS[0], "log_fluorescence": [1.0]},
                                               {"primary": SEQS[1]}])
    with pytest.raises(DatasetError, match=r"fluorescence_train.lmdb\[1\]: record lacks field\(s\) log_fluorescence"):
        get_task("fluorescence").load(tmp_path, "train")


def test_malicious_record_in_lmdb_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "solubility" / "solubility_test.lmdb"
    path.mkdir(parents=True)
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"num_examples", pickle.dumps(1))
        txn.put(b"0", pickle.dumps({"primary": "MKV", "solubility": Evil()}))
    env.close()
    with pytest.raises(DatasetError, match=r"solubility_test.lmdb\[0\]: refused to unpickle global"):
        get_task("solubility").load(tmp_path, "test")
    assert not marker.exists()


def test_read_tape_lmdb_checks(tmp_path: Path) -> None:
    path = tmp_path / "x.lmdb"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"num_examples", pickle.dumps(2))
        txn.put(b"0", pickle.dumps({"primary": "A"}))
    env.close()
    with pytest.raises(DatasetError, match=r"x.lmdb\[1\]: record missing"):
        read_tape_lmdb(path)
    write_tape_lmdb(path, [{"primary": "AC"}, {"primary": "D"}])  # atomic overwrite
    assert read_tape_lmdb(path) == [{"primary": "AC"}, {"primary": "D"}]
    assert not (tmp_path / "x.lmdb.tmp").exists()


def test_nan_labels_empty_and_junk_sequences_are_refused_with_counts(tmp_path: Path) -> None:
    recs = [{"primary": SEQS[0], "log_fluorescence": np.array([1.0], np.float32)},
            {"primary": SEQS[1], "log_fluorescence": np.array([np.nan], np.float32)},
            {"primary": "", "log_fluorescence": np.array([2.0], np.float32)},
            {"primary": "MKT1AY?", "log_fluorescence": np.array([2.5], np.float32)},
            {"primary": SEQS[2], "log_fluorescence": np.array([np.inf], np.float32)},
            {"primary": SEQS[2].lower(), "log_fluorescence": np.array([3.0], np.float32)}]
    _write(tmp_path, "fluorescence", "test", recs)
    with pytest.warns(DatasetWarning) as caught:
        out = get_task("fluorescence").load(tmp_path, "test")
    assert [r.label for r in out] == [1.0, 3.0]
    assert [r.id for r in out] == ["fluorescence/test/0", "fluorescence/test/5"]
    (msg,) = [str(w.message) for w in caught]
    assert "\n" not in msg and msg.startswith(str(tmp_path / "fluorescence" / "fluorescence_test.lmdb"))
    assert ("refused 4 of 6 records (2 non-finite label, 1 empty sequence, 1 characters outside the amino-acid "
            "alphabet; first: [1] non-finite label (nan); [2] empty sequence; [3] characters outside the amino-acid "
            "alphabet ['1', '?'])") in msg
    _write(tmp_path, "fluorescence", "valid", recs[1:3])
    with pytest.raises(DatasetError, match=r"every record was refused: refused 2 of 2 records"):
        get_task("fluorescence").load(tmp_path, "valid")


def test_pair_and_class_tasks_refuse_bad_records(tmp_path: Path) -> None:
    _write(tmp_path, "human_ppi", "test", [{"primary_1": SEQS[0], "primary_2": "", "interaction": 1},
                                           {"primary_1": SEQS[0], "primary_2": SEQS[1], "interaction": 0}])
    with pytest.warns(DatasetWarning, match=r"refused 1 of 2 records \(1 empty sequence"):
        assert [r.label for r in get_task("human_ppi").load(tmp_path, "test")] == [0]
    _write(tmp_path, "solubility", "test", [{"primary": SEQS[0], "solubility": np.float64("nan")},
                                            {"primary": SEQS[1], "solubility": 1}])
    with pytest.warns(DatasetWarning, match=r"refused 1 of 2 records \(1 non-finite label"):
        assert [r.label for r in get_task("solubility").load(tmp_path, "test")] == [1]


@pytest.mark.parametrize("field, value, match", [
    ("ss3", list("HEC" * 5 + "H"), r"\[0\]: field 'ss3' should be numbers, got <U1 values \(e.g. \['H', 'E', 'C'\]\)"),
    ("valid_mask", ["yes"] * 16, r"\[0\]: field 'valid_mask' should be numbers"),
])
def test_secondary_structure_non_numeric_fields_are_one_line(tmp_path: Path, field: str, value, match: str) -> None:
    rec = {"primary": SEQS[1], "ss3": np.zeros(16, np.int64), "valid_mask": np.ones(16), field: value}
    _write(tmp_path, "secondary_structure", "casp12", [rec])
    with pytest.raises(DatasetError, match=match) as err:
        get_task("secondary_structure").load(tmp_path, "casp12")
    assert "\n" not in str(err.value)


def test_secondary_structure_bad_classes_are_masked_with_a_count(tmp_path: Path) -> None:
    ss3 = (np.arange(16) % 3).astype(np.float64)
    ss3[[2, 9]] = [5, np.nan]  # no such class / no label, where valid_mask says there is one
    ss3[4] = 7  # also bad, but valid_mask already masks it
    mask = np.ones(16, np.float32)
    mask[4] = 0
    _write(tmp_path, "secondary_structure", "cb513", [{"primary": SEQS[1], "ss3": ss3, "valid_mask": mask}])
    with pytest.warns(DatasetWarning, match=r"masked 2 label positions \(ss3 not in 0..2 where valid_mask is set\)"):
        (rec,) = get_task("secondary_structure").load(tmp_path, "cb513")
    assert rec.label_mask.tolist() == [i not in (2, 4, 9) for i in range(16)]
    assert rec.label.dtype == np.int64 and rec.label[[0, 1, 3]].tolist() == [0, 1, 0]


@pytest.mark.parametrize("tertiary, match", [
    ("not coordinates", r"\[0\]: field 'tertiary' should be numbers, got <U15 values"),
    ([[0.0, 0.0, 0.0], [1.0, 2.0]] + [[0.0, 0.0, 0.0]] * 8, r"\[0\]: malformed contact record \(ValueError: "),
])
def test_contact_bad_tertiary_is_one_line(tmp_path: Path, tertiary, match: str) -> None:
    _write(tmp_path, "contact", "valid", [{"primary": "A" * 10, "tertiary": tertiary, "valid_mask": np.ones(10)}])
    with pytest.raises(DatasetError, match=match) as err:
        get_task("contact").load(tmp_path, "valid")
    assert "\n" not in str(err.value) and "proteinnet_valid.lmdb[0]" in str(err.value)
