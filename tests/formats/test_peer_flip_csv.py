"""FLIP tasks (aav, gb1, thermostability) from CSVs with FLIP's columns: sequence, target, set, validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from pa_geo.formats.peer_flip import load_flip
from pa_geo.formats.record_checks import DatasetWarning
from pa_geo.errors import DatasetError
from pa_geo.tasks import get_task

# Same column order and value spelling as FLIP's split CSVs (validation is empty for test rows).
CSV = """sequence,target,set,validation
MKTAYIAK,0.5,train,False
MKTAYIAR,-1.25,train,True
MKTAYIAG,2.0,train,False
MKTAYIAW,3.5,test,
MKTAYIAC,-0.5,test,
"""


def _write(root: Path, task: str, name: str, text: str = CSV) -> Path:
    path = root / task / "splits" / f"{name}.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


# aav (cropped to PEER's mutated region, so it needs full-length VP1 rows): tests/formats/test_peer_protocols.py
@pytest.mark.parametrize("task,name", [("gb1", "two_vs_rest"), ("thermostability", "human_cell")])
def test_flip_splits_follow_set_and_validation(tmp_path: Path, task: str, name: str) -> None:
    _write(tmp_path, task, name)
    spec = get_task(task)
    assert spec.options["flip_split"] == name
    train, valid, test = (spec.load(tmp_path, s) for s in ("train", "valid", "test"))
    assert [(r.proteins[0].sequence, r.label) for r in train] == [("MKTAYIAK", 0.5), ("MKTAYIAG", 2.0)]
    assert [(r.proteins[0].sequence, r.label) for r in valid] == [("MKTAYIAR", -1.25)]
    assert [(r.proteins[0].sequence, r.label) for r in test] == [("MKTAYIAW", 3.5), ("MKTAYIAC", -0.5)]
    assert len({r.id for r in train + valid + test}) == 5


def test_other_flip_split_file(tmp_path: Path) -> None:
    _write(tmp_path, "gb1", "low_vs_high")
    assert len(load_flip("gb1", tmp_path, "test", flip_split="low_vs_high")) == 2
    with pytest.raises(DatasetError, match="unknown FLIP split file 'nope'"):
        load_flip("gb1", tmp_path, "test", flip_split="nope")


def test_missing_csv_says_where_and_which_zip(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        get_task("aav").load(tmp_path, "train")
    msg = str(err.value)
    assert str(tmp_path / "aav" / "splits" / "two_vs_many.csv") in msg and "splits/aav/splits.zip" in msg


def test_bad_target_and_columns(tmp_path: Path) -> None:
    _write(tmp_path, "aav", "two_vs_many", "sequence,target,set,validation\nMKV,abc,train,False\n")
    with pytest.raises(DatasetError, match=r"two_vs_many.csv\[row 2\]: target 'abc' is not a number"):
        get_task("aav").load(tmp_path, "train")
    _write(tmp_path, "gb1", "two_vs_rest", "seq,target\nMKV,1\n")
    with pytest.raises(DatasetError, match="missing FLIP column"):
        get_task("gb1").load(tmp_path, "train")


def test_missing_targets_empty_and_junk_sequences_are_refused_with_counts(tmp_path: Path) -> None:
    _write(tmp_path, "gb1", "two_vs_rest", "sequence,target,set,validation\nMKTAYIAK,0.5,train,False\n"
           "MKTAYIAR,,train,False\n,1.0,train,False\nMKT AYI#,2.0,train,False\nMKTAYIAG,nan,train,False\n"
           "MKTAYIAW,1.5,train,False\nMKTAYIAC,-1,test,\n")
    with pytest.warns(DatasetWarning) as caught:
        train = get_task("gb1").load(tmp_path, "train")
    assert [(r.proteins[0].sequence, r.label) for r in train] == [("MKTAYIAK", 0.5), ("MKTAYIAW", 1.5)]
    (msg,) = [str(w.message) for w in caught]
    assert msg == (f"{tmp_path / 'gb1' / 'splits' / 'two_vs_rest.csv'}: refused 4 of 6 records (2 non-finite label, "
                   f"1 empty sequence, 1 characters outside the amino-acid alphabet; first: [row 3] non-finite label "
                   f"(nan); [row 4] empty sequence; [row 5] characters outside the amino-acid alphabet [' ', '#'])")
    assert len(get_task("gb1").load(tmp_path, "test")) == 1
