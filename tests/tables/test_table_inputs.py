"""``pa-geo predict --input``: structure files, FASTA files and tables -> records with the documented ids."""
from __future__ import annotations

import shutil
from pathlib import Path

from pa_geo.tables.inputs import read_predict_inputs

DATA = Path(__file__).resolve().parents[1] / "data"


def test_structures_fasta_tables_and_directories(tmp_path):
    shutil.copy(DATA / "2cviA.pdb.gz", tmp_path / "2cviA.pdb.gz")
    (tmp_path / "sub").mkdir()
    shutil.copy(DATA / "1mr1D.pdb.gz", tmp_path / "sub" / "model.v2.pdb.gz")
    (tmp_path / "seqs.fasta").write_text(">first some description\nMKTAYIAK\nQR\n>second\nGSHM\n")
    (tmp_path / "t.csv").write_text("id,structure,chain\nhb,hb.pdb.gz,B\nmissing,nothere.pdb,\n")
    shutil.copy(DATA / "2hhb.pdb.gz", tmp_path / "hb.pdb.gz")
    (tmp_path / "junk.pdb").write_text("not a structure\n")
    records, bad = read_predict_inputs([tmp_path / "2cviA.pdb.gz", tmp_path / "seqs.fasta", tmp_path / "t.csv",
                                        tmp_path / "sub", tmp_path / "junk.pdb"])
    assert [r.id for r in records] == ["2cviA", "first", "second", "hb", "model.v2"]
    assert all(r.label is None for r in records)
    assert records[1].proteins[0].sequence == "MKTAYIAKQR" and not records[1].proteins[0].has_structure
    assert records[3].proteins[0].chains == ["B"] and len(records[3].proteins[0]) == 146
    assert len(bad) == 2 and all("\n" not in b for b in bad)
    assert "t.csv line 3 (id missing)" in bad[0] and "no such file" in bad[0]
    assert "junk.pdb" in bad[1]


def test_repeated_ids_and_pair_models(tmp_path):
    shutil.copy(DATA / "2cviA.pdb.gz", tmp_path / "2cviA.pdb.gz")
    (tmp_path / "a.fasta").write_text(">2cviA\nMKT\n")
    records, bad = read_predict_inputs([tmp_path / "2cviA.pdb.gz", tmp_path / "a.fasta"])
    assert [r.id for r in records] == ["2cviA"] and records[0].proteins[0].has_structure
    assert len(bad) == 1 and "id '2cviA' repeats an earlier input" in bad[0]
    (tmp_path / "pairs.tsv").write_text("id\tsequence_a\tsequence_b\nab\tMKTAYIAK\tGSHMLE\n")
    records, bad = read_predict_inputs([tmp_path / "pairs.tsv", tmp_path / "2cviA.pdb.gz"], level="pair")
    assert [[p.sequence for p in r.proteins] for r in records] == [["MKTAYIAK", "GSHMLE"]]
    assert len(bad) == 1 and "a protein-pair model predicts from a table" in bad[0]
