"""Solubility CSV: the shipped 3,230 sequences and refusal of malformed rows."""
from __future__ import annotations

from pathlib import Path

import pytest

from pa_geo.demo.data import SOLUBILITY_PATH
from pa_geo.demo.solubility import load_solubility
from pa_geo.errors import DatasetError

SOURCE = Path(__file__).resolve().parents[2] / "../shared/data/solubility_solvnet.csv"


def test_shipped_csv():
    recs = load_solubility()
    assert len(recs) == 3230 and sum(r.label for r in recs) == 1675
    r = recs[0]
    assert r.protein.id == "protein_6212" and r.label == 0 and not r.protein.has_structure
    assert r.protein.sequence.startswith("MSSQIIPSLPKTFSSSLDLW")
    assert r.protein.source == f"{SOLUBILITY_PATH}:2"
    lengths = [len(r.protein) for r in recs]
    assert min(lengths) == 20 and max(lengths) == 1938
    if SOURCE.is_file():
        assert SOLUBILITY_PATH.read_bytes() == SOURCE.read_bytes()


GOOD = 'name,label,detail,aa_seq\np1,1,"2X31_1|Chains A, B|X",MKTAYIAK\n'


@pytest.mark.parametrize("body, reason", [
    ("", "empty file"),
    ("name,label\np1,1\n", ":1: missing column(s) aa_seq"),
    ("p2,2,x,MKT\n", ":3: record 'p2': label '2' is not 0 or 1"),
    ("p2,,x,MKT\n", ":3: record 'p2': label '' is not 0 or 1"),
    (",1,x,MKT\n", ":3: empty name"),
    ("p1,0,x,MKV\n", ":3: duplicate name 'p1' (first on line 2)"),
    ("p2,1,x,MK T\n", ":3: record 'p2': invalid sequence characters [' ']"),
    ("p2,1,x,\n", ":3: record 'p2': empty sequence"),
    ("p2,1\n", ":3: 2 field(s), expected at least 4"),
])
def test_malformed_rows_refused_with_file_and_line(tmp_path, body, reason):
    path = tmp_path / "sol.csv"
    path.write_text(body if body in ("", "name,label\np1,1\n") else GOOD + body)
    with pytest.raises(DatasetError) as info:
        load_solubility(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and reason in msg and "\n" not in msg


def test_quoted_commas_and_case(tmp_path):
    path = tmp_path / "sol.csv"
    path.write_text(GOOD + "p2,0,plain,mkvl\n")
    recs = load_solubility(path)
    assert [(r.protein.id, r.protein.sequence, r.label) for r in recs] == [("p1", "MKTAYIAK", 1), ("p2", "MKVL", 0)]
