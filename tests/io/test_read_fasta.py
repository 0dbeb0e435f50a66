"""read_fasta: sequence-only proteins from real sequences; refusal of malformed files."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from pa_geo.io import StructureError, read_fasta, read_structure

DATA = Path(__file__).resolve().parents[1] / "data"


def test_fasta_records_from_real_chains(tmp_path):
    hb = read_structure(DATA / "2hhb.pdb.gz").chain_sequences
    text = f">hba_A human haemoglobin alpha\n{hb['A'][:60]}\n{hb['A'][60:]}\n\n>hbb_B beta\n{hb['B'].lower()}*\n"
    path = tmp_path / "hb.fasta.gz"
    path.write_bytes(gzip.compress(text.encode()))
    recs = read_fasta(path)
    assert [r.id for r in recs] == ["hba_A", "hbb_B"]
    assert recs[0].sequence == hb["A"] and recs[1].sequence == hb["B"]  # joined lines, upper-cased, '*' dropped
    p = recs[0]
    assert not p.has_structure and len(p.atoms) == 0 and p.source == str(path)
    assert p.backbone.shape == (141, 4, 3) and np.isnan(p.backbone).all()
    assert p.residue_numbers.tolist() == list(range(1, 142)) and p.chain_breaks.sum() == 1


@pytest.mark.parametrize("text, reason", [
    ("", "empty file"),
    ("MKTAYIAK\n>a\nMKT\n", "sequence before the first '>' header"),
    (">\nMKT\n", "empty FASTA header"),
    (">a\n\n>b\nMKT\n", "record 'a' (line 1): empty sequence"),
    (">a\nMKT-AY1\n", "invalid sequence characters ['-', '1']"),
    (">a\nMKT\n>a\nMKV\n", "duplicate record id"),
    ("; comment only\n", "no FASTA records"),
])
def test_malformed_fasta_refused_with_one_line(tmp_path, text, reason):
    path = tmp_path / "x.fasta"
    path.write_text(text)
    with pytest.raises(StructureError) as info:
        read_fasta(path)
    assert reason in str(info.value) and str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_structure_file_is_not_fasta():
    with pytest.raises(StructureError, match="sequence before the first '>' header"):
        read_fasta(DATA / "2cviA.pdb.gz")
