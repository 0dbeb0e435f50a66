"""Label tables: CSV / TSV / Parquet rows -> TaskRecords, with the row rules of issue 10 and one-line bad rows."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from pa_geo.tables import LabelTable, TableSettings, read_raw_table, sort_class_names
from pa_geo.errors import ConfigError, DatasetError

DATA = Path(__file__).resolve().parents[1] / "data"
DSSP = {name: (DATA / f"{name}.pdb.dssp").read_text().split()[0] for name in ("2cviA", "1mr1D")}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A folder with two structures (one plain, one gzipped), a 4-chain hemoglobin and a broken file."""
    (tmp_path / "pdb").mkdir()
    with gzip.open(DATA / "2cviA.pdb.gz") as fh:
        (tmp_path / "pdb" / "2cviA.pdb").write_bytes(fh.read())
    shutil.copy(DATA / "1mr1D.pdb.gz", tmp_path / "pdb" / "1mr1D.pdb.gz")
    shutil.copy(DATA / "2hhb.pdb.gz", tmp_path / "pdb" / "2hhb.pdb.gz")
    (tmp_path / "pdb" / "broken.pdb").write_text("ATOM      1  CA  ALA A   1    garbage\n")
    return tmp_path


def write(folder: Path, text: str, name: str = "labels.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def residue_table(folder: Path, extra: str = "") -> Path:
    return write(folder, "id,structure,split,label\n"
                         f"a,pdb/2cviA.pdb,train,{DSSP['2cviA']}\n"
                         f"b,pdb/1mr1D.pdb.gz,valid,{DSSP['1mr1D']}\n"
                         f"c,pdb/2cviA.pdb,test,{DSSP['2cviA']}\n" + extra)


def test_residue_symbols_to_records(folder):
    table = LabelTable(TableSettings(residue_table(folder), level="residue", type="multiclass"))
    assert table.has_structures and table.split_counts() == {"train": 1, "valid": 1, "test": 1}
    assert table.codec.class_names == ["-", "E", "H"]  # code-point order of the symbols seen in train
    (rec,) = list(table.records("valid"))
    assert rec.id == "b" and rec.proteins[0].id == "b" and len(rec.proteins[0]) == len(DSSP["1mr1D"])
    expected = np.array(["-EH".index(c) for c in DSSP["1mr1D"]])
    assert rec.label.dtype == np.int64 and (rec.label == expected).all() and rec.label_mask.all()
    assert rec.extra["row"] == 3  # line number in the file


def test_mask_symbols_and_class_names_from_train_only(folder):
    masked = "." * 5 + DSSP["2cviA"][5:]
    path = write(folder, "id,structure,split,label\n"
                         f"a,pdb/2cviA.pdb,train,{masked}\n"
                         f"b,pdb/2cviA.pdb,valid,{DSSP['2cviA']}\n")
    table = LabelTable(TableSettings(path, level="residue", type="multiclass"))
    (rec,) = list(table.records("train"))
    assert rec.label_mask.tolist() == [False] * 5 + [True] * (len(masked) - 5)
    # '.' is the default mask set; with another mask set '.' becomes a class and '-' is not scored
    table = LabelTable(TableSettings(path, level="residue", type="multiclass", mask_symbols="-"))
    assert table.codec.class_names == [".", "E", "H"]
    (rec,) = list(table.records("train"))
    assert not rec.label_mask[[i for i, c in enumerate(masked) if c == "-"]].any()


def test_symbol_unseen_in_training_is_a_bad_row(folder):
    path = write(folder, "id,structure,split,label\n"
                         f"a,pdb/2cviA.pdb,train,{DSSP['2cviA'].replace('H', 'E')}\n"
                         f"b,pdb/2cviA.pdb,valid,{DSSP['2cviA']}\n")
    table = LabelTable(TableSettings(path, level="residue", type="multiclass"))
    assert table.codec.class_names == ["-", "E"]
    with pytest.raises(DatasetError, match=r"labels.csv line 3 \(id b\): residue 15: symbol 'H' is not one of"):
        list(table.records("valid"))
    given = LabelTable(TableSettings(path, level="residue", type="multiclass", class_names=["H", "E", "-"]))
    (rec,) = list(given.records("valid"))
    assert rec.label[DSSP["2cviA"].index("H")] == 0  # class_names fix the order


def test_residue_regression_numbers_with_nan(folder):
    n = len(DSSP["2cviA"])
    values = ["nan"] + [f"{i / 10:g}" for i in range(1, n)]
    path = write(folder, "id,structure,split,label\n"
                         f"a,pdb/2cviA.pdb,train,{';'.join(values)}\n"
                         f"b,pdb/2cviA.pdb,valid,{';'.join(values[:-1])}\n")
    table = LabelTable(TableSettings(path, level="residue", type="regression"))
    (rec,) = list(table.records("train"))
    assert rec.label.dtype == np.float32 and not rec.label_mask[0] and rec.label_mask[1:].all()
    assert rec.label[1] == pytest.approx(0.1) and np.isnan(rec.label[0])
    with pytest.raises(DatasetError, match=rf"line 3 \(id b\): {n - 1} residue label values for {n} residues"):
        list(table.records("valid"))


def test_wrong_label_length_missing_and_broken_files(folder):
    path = residue_table(folder, f"d,pdb/1mr1D.pdb.gz,test,{DSSP['2cviA']}\n"
                                 f"e,pdb/nothere.pdb,test,{DSSP['2cviA']}\n"
                                 f"f,pdb/broken.pdb,test,{DSSP['2cviA']}\n")
    strict = LabelTable(TableSettings(path, level="residue", type="multiclass"))
    with pytest.raises(DatasetError) as err:
        list(strict.records("test"))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path} line 5 (id d): {len(DSSP['2cviA'])} residue label symbols "
                                              f"for {len(DSSP['1mr1D'])} residues")
    lenient = LabelTable(TableSettings(path, level="residue", type="multiclass", skip_bad=True))
    out = list(lenient.records("test"))
    assert [r.id for r in out if not isinstance(r, Exception)] == ["c"]
    errors = [str(r) for r in out if isinstance(r, Exception)]
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert "line 6 (id e): " in errors[1] and "nothere.pdb: no such file" in errors[1]
    assert "line 7 (id f): " in errors[2] and "broken.pdb" in errors[2]


def test_duplicate_and_empty_ids(folder):
    path = residue_table(folder, f"a,pdb/2cviA.pdb,test,{DSSP['2cviA']}\n,pdb/2cviA.pdb,test,{DSSP['2cviA']}\n")
    with pytest.raises(DatasetError, match=r"labels.csv line 5 \(id a\): duplicate id \(first on line 2\)"):
        LabelTable(TableSettings(path, level="residue", type="multiclass"))
    table = LabelTable(TableSettings(path, level="residue", type="multiclass", skip_bad=True))
    assert table.ids() == ["a", "b", "c"] and len(table.skipped) == 2
    assert "line 6: empty id" in table.skipped[1]


def test_chain_column_and_path_chain_suffix(folder):
    path = write(folder, "id,structure,chain,sequence,label,split\n"
                         "hb_a,pdb/2hhb.pdb.gz,A,,1.5,train\n"
                         "hb_bd,pdb/2hhb.pdb.gz,\"B,D\",,2.0,valid\n"
                         "hb_c,pdb/2hhb.pdb.gz:C,,,0.5,test\n"
                         "hb_x,pdb/2hhb.pdb.gz:Q,,,0.5,test\n")
    table = LabelTable(TableSettings(path, level="protein", type="regression", skip_bad=True))
    (a,) = list(table.records("train"))
    (bd,) = list(table.records("valid"))
    c, x = list(table.records("test"))
    assert a.proteins[0].chains == ["A"] and len(a.proteins[0]) == 141 and a.label == 1.5
    assert bd.proteins[0].chains == ["B", "D"] and len(bd.proteins[0]) == 292
    assert c.proteins[0].chains == ["C"]
    assert isinstance(x, DatasetError) and "chain(s) 'Q' not found" in str(x)


def test_sequence_only_table_and_sequence_checked_against_structure(folder):
    path = write(folder, "id,sequence,label,split\nx,MKTAYIAKQR,yes,train\ny,mktay iakq*,no,train\n"
                         "z,MKT1,no,valid\nw,MKTW,no,valid\n")
    table = LabelTable(TableSettings(path, type="binary", skip_bad=True))
    assert not table.has_structures
    recs = {r.id: r for s in ("train", "valid", "test") for r in table.records(s) if not isinstance(r, Exception)}
    assert set(recs) == {"x", "y", "w"} and recs["y"].proteins[0].sequence == "MKTAYIAKQ"
    assert not recs["x"].proteins[0].has_structure
    seq = "".join(read_seq(folder / "pdb" / "2cviA.pdb"))
    path = write(folder, f"id,structure,sequence,label,split\na,pdb/2cviA.pdb,{seq},1,train\n"
                         f"b,pdb/2cviA.pdb,{seq[:-1]}A,2,valid\n", "check.csv")
    table = LabelTable(TableSettings(path))
    assert len(list(table.records("train"))) == 1
    with pytest.raises(DatasetError, match=r"id b\): sequence \(83 residues\) differs from the structure's "
                                           r"residues \(83\) at position 83"):
        list(table.records("valid"))


def read_seq(path: Path) -> str:
    from pa_geo.io import read_structure

    return read_structure(path).sequence


@pytest.mark.parametrize("text, match", [
    ("id,structure,sequence,label,split\na,pdb/2cviA.pdb,,1,train\nb,,MKTAYIAK,2,valid\n",
     r"line 3 \(id b\): no structure file"),  # a table with structures needs one in every row
    ('id,sequence,note,label,split\n\na,MKT,"two\nlines",1,train\nb,MKV,x,oops,valid\n',
     r"line 5 \(id b\): label 'oops' in column 'label' is not a finite"),  # blank line, quoted newline counted
])
def test_bad_valid_row_named_by_its_line(folder, text, match):
    table = LabelTable(TableSettings(write(folder, text)))
    with pytest.raises(DatasetError, match=match):
        list(table.records("valid"))


@pytest.mark.parametrize("kind, cells, expected, names", [
    ("binary", ["soluble", "insoluble"], [1.0, 0.0], ["insoluble", "soluble"]),
    ("binary", ["1", "0"], [1.0, 0.0], ["0", "1"]),
    ("multiclass", ["10", "2", "9"], [2, 0, 1], ["2", "9", "10"]),  # numeric order, not "10" < "2"
    ("multiclass", ["nucleus", "cytoplasm", "membrane"], [2, 0, 1], ["cytoplasm", "membrane", "nucleus"]),
])
def test_protein_level_class_names_sorted(tmp_path, kind, cells, expected, names):
    rows = "".join(f"p{i},MKTAYIAKQR{'A' * i},{c},train\n" for i, c in enumerate(cells))
    path = write(tmp_path, f"id,sequence,label,split\n{rows}v,MKTAYIAK,{cells[0]},valid\n")
    table = LabelTable(TableSettings(path, type=kind))
    assert table.codec.class_names == names
    assert [r.label for r in table.records("train")] == expected


def test_multilabel_one_column_or_many_and_multi_target_regression(tmp_path):
    path = write(tmp_path, "id,sequence,label,go1,go2,t1,t2,split\n"
                           "a,MKTAYIAK,GO:2;GO:1,1,0,0.5,1.5,train\n"
                           "b,MKTAYIAR,,0,true,1,2,train\n"
                           "c,MKTAYIAW,GO:3,1,1,2,3,valid\n")
    one = LabelTable(TableSettings(path, type="multilabel"))
    assert one.codec.class_names == ["GO:1", "GO:2"] and one.codec.num_outputs == 2
    assert [r.label.tolist() for r in one.records("train")] == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(DatasetError, match="label 'GO:3' is not one of the classes"):
        list(one.records("valid"))
    many = LabelTable(TableSettings(path, type="multilabel", label_columns=["go1", "go2"]))
    assert many.codec.class_names == ["go1", "go2"]
    assert [r.label.tolist() for r in many.records("train")] == [[1.0, 0.0], [0.0, 1.0]]
    reg = LabelTable(TableSettings(path, type="regression", label_columns=["t1", "t2"]))
    assert reg.codec.num_outputs == 2 and [r.label.tolist() for r in reg.records("train")] == [[0.5, 1.5], [1, 2]]


def test_pairs_with_suffixes(folder):
    path = write(folder, "id,structure_a,structure_b,label,split\n"
                         "ab,pdb/2cviA.pdb,pdb/1mr1D.pdb.gz,1,train\n"
                         "ba,pdb/1mr1D.pdb.gz,pdb/2hhb.pdb.gz:A,0,train\n"
                         "v,pdb/1mr1D.pdb.gz,pdb/2cviA.pdb,1,valid\n")
    table = LabelTable(TableSettings(path, level="pair", type="binary"))
    ab, ba = list(table.records("train"))
    assert [p.id for p in ab.proteins] == ["ab_a", "ab_b"] and ab.label == 1.0 and ba.label == 0.0
    assert [len(p) for p in ab.proteins] == [83, 96] and ba.proteins[1].chains == ["A"]
    bad = write(folder, "id,structure_a,label\nab,pdb/2cviA.pdb,1\n", "bad.csv")
    with pytest.raises(DatasetError, match="a protein pair needs a structure_b or sequence_b column"):
        LabelTable(TableSettings(bad, level="pair", type="binary"))


def test_tsv_and_parquet_give_the_same_records(folder):
    import pandas as pd

    csv_path = residue_table(folder)
    frame = pd.read_csv(csv_path)
    frame.to_csv(folder / "labels.tsv", sep="\t", index=False)
    frame.to_parquet(folder / "labels.parquet")
    reference = [(r.id, r.label.tolist()) for r in
                 LabelTable(TableSettings(csv_path, level="residue", type="multiclass")).records("valid")]
    for name in ("labels.tsv", "labels.parquet"):
        table = LabelTable(TableSettings(folder / name, level="residue", type="multiclass"))
        assert [(r.id, r.label.tolist()) for r in table.records("valid")] == reference
    raw = read_raw_table(folder / "labels.parquet")
    assert raw.unit == "row" and raw.rows[1].number == 2


def test_parquet_list_and_float_cells(tmp_path):
    import pandas as pd

    pd.DataFrame({"id": [1, 2], "sequence": ["MKT", "MKV"], "label": [[0.5, None, 1.0], [1.0, 2.0, 3.0]],
                  "split": ["train", "valid"]}).to_parquet(tmp_path / "t.parquet")
    table = LabelTable(TableSettings(tmp_path / "t.parquet", level="residue", type="regression"))
    (rec,) = list(table.records("train"))
    assert rec.id == "1" and rec.label_mask.tolist() == [True, False, True]


@pytest.mark.parametrize("text, match", [
    ("", "empty table"),
    ("id,sequence,label\n", "has a header but no rows"),
    ("id,id,label\na,b,1\n", "column 'id' appears twice"),
    ("name,sequence,label\na,MKT,1\n", "no id column"),
    ("id,sequence,value\na,MKT,1\n", r"label column\(s\) label not found"),
    ("id,label\na,1\n", "a table needs a structure or sequence column"),
])
def test_bad_tables_one_line(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(DatasetError, match=match) as err:
        LabelTable(TableSettings(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_bad_settings_and_bad_splits(tmp_path):
    path = write(tmp_path, "id,sequence,label,split\na,MKT,1,train\nb,MKV,2,bogus\nc,MKW,3,test\n")
    with pytest.raises(ConfigError, match="data.table.level must be one of protein, residue, pair"):
        TableSettings(path, level="atom")
    with pytest.raises(ConfigError, match="residue-level multilabel"):
        TableSettings(path, level="residue", type="multilabel")
    with pytest.raises(ConfigError, match="binary task has 2 class names"):
        TableSettings(path, type="binary", class_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="split_fractions"):
        TableSettings(path, split_fractions=(0.5, 0.5, 0.5))
    with pytest.raises(DatasetError, match=r"line 3 \(id b\): split 'bogus' is not one of train, valid, test"):
        LabelTable(TableSettings(path))
    with pytest.raises(DatasetError, match="no valid rows"):
        LabelTable(TableSettings(path, skip_bad=True))
    with pytest.raises(ConfigError, match="binary task needs exactly 2 label values in the training split"):
        LabelTable(TableSettings(write(tmp_path, "id,sequence,label,split\na,MKT,1,train\nb,MKV,1,valid\n"),
                                 type="binary"))


def test_sort_class_names_rule():
    assert sort_class_names(["b", "a", "B"]) == ["B", "a", "b"]
    assert sort_class_names(["10", "2", "-1", "2.5"]) == ["-1", "2", "2.5", "10"]
    assert sort_class_names(["true", "false"]) == ["false", "true"]
