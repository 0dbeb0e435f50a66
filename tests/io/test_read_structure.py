"""read_structure on real PDB/mmCIF files and on edited real records (tests/data/make_variants.py)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from pa_geo.io import StructureError, chain_breaks_from_backbone, read_structure

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED = Path(__file__).resolve().parents[2] / "../shared/data/pdb_dssp"


@pytest.fixture(scope="module")
def base():
    return read_structure(DATA / "2cviA.pdb.gz")


def _index(protein, number, icode=""):
    hits = np.flatnonzero((protein.residue_numbers == number) & (protein.insertion_codes == icode))
    assert len(hits) == 1
    return int(hits[0])


def test_real_chain_matches_reference_dssp_length(base):
    dssp = (DATA / "2cviA.pdb.dssp").read_text().split()[0]
    assert len(base) == len(dssp) == 83
    assert base.id == "2cviA" and base.chains == ["A"] and base.has_structure
    assert base.sequence.startswith("MVTAFILMVTAAGKEREVMEK") and base.sequence.endswith("HHHHHH")
    assert base.backbone.shape == (83, 4, 3) and base.backbone.dtype == np.float32
    assert base.backbone_mask.all()
    np.testing.assert_allclose(base.backbone[0, 0], [-30.466, 22.768, -3.684], atol=1e-3)  # first N record
    assert base.chain_breaks.tolist() == [True] + [False] * 82
    assert len(base.atoms) == 675 and (base.atoms.residue_index >= 0).all() and not base.atoms.hetero.any()
    assert set(base.atoms.element) == {"C", "N", "O", "S"}  # blank element columns inferred from atom names


def test_failing_mdanalysis_case_keeps_residue_with_missing_c_and_o():
    """1mr1D_failing lacks C and O of ARG 219 (why DSSP fails on it): kept with NaN, no spurious break."""
    ok, bad = read_structure(DATA / "1mr1D.pdb.gz"), read_structure(DATA / "1mr1D_failing.pdb.gz")
    assert bad.sequence == ok.sequence and len(bad) == 96
    i = _index(bad, 219)
    assert bad.backbone_mask[i].tolist() == [True, True, False, False]
    assert np.isnan(bad.backbone[i, 2:]).all()
    assert bad.backbone_mask.all(1).sum() == 95
    assert bad.chain_breaks.tolist() == ok.chain_breaks.tolist() == [True] + [False] * 95  # CA-CA fallback


def test_nmr_first_model_by_default_and_selectable(base):
    first = read_structure(DATA / "2cviA_nmr.pdb.gz")
    np.testing.assert_allclose(first.backbone, base.backbone)
    second = read_structure(DATA / "2cviA_nmr.pdb.gz", model=1)
    np.testing.assert_allclose(second.backbone - base.backbone, np.broadcast_to([5.0, 0, 0], base.backbone.shape),
                               atol=1e-3)
    for bad in (2, -1):
        with pytest.raises(StructureError, match="model .* 2 model"):
            read_structure(DATA / "2cviA_nmr.pdb.gz", model=bad)


def test_altlocs_highest_occupancy_then_first(base):
    p = read_structure(DATA / "2cviA_altloc.pdb")
    assert len(p) == len(base) and len(p.atoms) == len(base.atoms)  # one altloc per atom
    i10, i20 = _index(p, 10), _index(p, 20)
    np.testing.assert_allclose(p.backbone[i10] - base.backbone[i10], np.broadcast_to([0.5, 0, 0], (4, 3)), atol=1e-3)
    np.testing.assert_allclose(p.backbone[i20], base.backbone[i20])  # 0.5/0.5 tie -> A


def test_insertion_codes_are_distinct_residues(base):
    p = read_structure(DATA / "2cviA_inscode.pdb.gz")
    assert p.sequence == base.sequence
    tail = list(zip(p.residue_numbers[-5:].tolist(), p.insertion_codes[-5:].tolist()))
    assert tail == [(82, ""), (82, "A"), (82, "B"), (82, "C"), (83, "")]
    np.testing.assert_allclose(p.backbone, base.backbone)


def test_modified_residues_waters_and_ligands(base):
    p = read_structure(DATA / "2cviA_mse.pdb.gz")
    expected = list(base.sequence)
    expected[_index(base, 40)] = "X"  # UNK
    assert p.sequence == "".join(expected)
    assert [p.sequence[_index(p, r)] for r in (1, 8, 19)] == ["M", "M", "M"]  # MSE -> M
    a = p.atoms
    mse = a.resname == "MSE"
    assert mse.sum() > 0 and a.hetero[mse].all() and (a.residue_index[mse] >= 0).all()
    assert "SE" in set(a.element[mse])
    non_res = a.residue_index < 0
    assert sorted(set(a.resname[non_res])) == ["HOH", "SO4"] and non_res.sum() == 4 and a.hetero[non_res].all()
    assert len(a) == len(base.atoms) + 4


def test_hybrid36_serials_and_residue_numbers(base):
    p = read_structure(DATA / "2cviA_hy36.pdb.gz")
    assert p.sequence == base.sequence
    assert p.residue_numbers.tolist() == list(range(10000, 10083))


def test_blank_chain_id_takes_segid(base):
    p = read_structure(DATA / "2cviA_segid.pdb")
    assert p.chains == ["PROA"] and p.sequence == base.sequence
    assert read_structure(DATA / "2cviA_segid.pdb", chains="PROA").sequence == base.sequence


def test_gap_is_a_chain_break():
    p = read_structure(DATA / "2cviA_gap.pdb.gz")
    assert len(p) == 78
    assert np.flatnonzero(p.chain_breaks).tolist() == [0, _index(p, 45)]


def test_multichain_with_heme_and_waters_and_chain_selection():
    p = read_structure(DATA / "2hhb.pdb.gz")
    assert p.chains == ["A", "B", "C", "D"]
    assert [len(s) for s in p.chain_sequences.values()] == [141, 146, 141, 146]
    assert p.chain_sequences["A"].startswith("VLSPADKTNVKAAW") and p.chain_sequences["B"].startswith("VHLTPEEKS")
    assert np.flatnonzero(p.chain_breaks).tolist() == [0, 141, 287, 428]
    hem = p.atoms.resname == "HEM"
    assert hem.sum() == 172 and (p.atoms.residue_index[hem] == -1).all() and p.atoms.hetero[hem].all()
    b = read_structure(DATA / "2hhb.pdb.gz", chains=["B"])
    assert b.chains == ["B"] and b.sequence == p.chain_sequences["B"] and b.chain_breaks.sum() == 1
    assert set(b.atoms.chain_id) == {"B"}
    with pytest.raises(StructureError, match=r"'Z' not found; protein chains in the file: A, B, C, D"):
        read_structure(DATA / "2hhb.pdb.gz", chains=["A", "Z"])


def test_mmcif_matches_pdb_and_dna_is_not_protein():
    pdb, cif = read_structure(DATA / "3mht.pdb.gz"), read_structure(DATA / "3mht.cif.gz")
    assert pdb.chains == cif.chains == ["A"] and len(pdb) == 327
    assert cif.sequence == pdb.sequence
    np.testing.assert_allclose(cif.backbone, pdb.backbone, atol=1e-3)
    dna = np.isin(pdb.atoms.resname, ["DA", "DC", "DG", "DT"])
    assert dna.sum() > 0 and (pdb.atoms.residue_index[dna] == -1).all()
    assert "SAH" in set(pdb.atoms.resname[pdb.atoms.residue_index < 0])


def test_hydrogens_are_kept_in_atom_table():
    p = read_structure(DATA / "wrong_hydrogens.pdb.gz")
    assert p.sequence == "FS" and (p.atoms.element == "H").sum() > 0


def test_chain_breaks_from_backbone(base):
    bb = base.backbone.copy()
    bb[40:] += np.float32(10.0)
    assert np.flatnonzero(chain_breaks_from_backbone(bb, base.chain_ids)).tolist() == [0, 40]
    bb[40, 0] = np.nan  # N missing: CA-CA (> 4.2 A here) decides
    assert chain_breaks_from_backbone(bb, base.chain_ids)[40]
    chains = base.chain_ids.copy()
    chains[60:] = "B"
    assert np.flatnonzero(chain_breaks_from_backbone(base.backbone, chains)).tolist() == [0, 60]


def _lines(name: str) -> list[str]:
    return gzip.open(DATA / name, "rt").read().splitlines()


@pytest.mark.parametrize("case, reason", [
    ("empty", "empty file"), ("blank", "empty file"), ("random", "binary content"), ("html", "HTML page"),
    ("truncated_gz", "truncated or corrupt gzip"), ("fasta", "FASTA"), ("directory", "is a directory"),
    ("missing", "no such file"), ("nan", "no atom has finite coordinates"), ("ligands_only", "no protein chain"),
    ("dna_only", "no protein chain"), ("no_ca", "no amino-acid residue has a CA"), ("bad_coord", "malformed PDB"),
    ("no_records", "no ATOM/HETATM records"), ("cif_no_atoms", "without an _atom_site loop"),
    ("text", "neither PDB nor mmCIF"),
])
def test_hostile_inputs_raise_one_line(tmp_path, case, reason):
    path = tmp_path / f"{case}.pdb"
    real = (DATA / "2cviA.pdb.gz").read_bytes()
    if case == "empty":
        path.write_bytes(b"")
    elif case == "blank":
        path.write_bytes(gzip.compress(b"\n  \n"))
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "html":
        path.write_text("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body>Not Found</body></html>\n")
    elif case == "truncated_gz":
        path = tmp_path / "cut.pdb.gz"
        path.write_bytes(real[: len(real) // 2])
    elif case == "fasta":
        path.write_text(">2cviA\nMVTAFILMVTAAGKEREVMEK\n")
    elif case == "directory":
        path = tmp_path
    elif case == "missing":
        path = tmp_path / "nope.pdb"
    elif case == "nan":
        path = DATA / "2cviA_nan.pdb.gz"
    elif case == "ligands_only":
        path.write_text("\n".join(ln for ln in _lines("2hhb.pdb.gz") if ln.startswith("HETATM")) + "\n")
    elif case == "dna_only":
        path.write_text("\n".join(ln for ln in _lines("3mht.pdb.gz") if ln[21:22] in "CD") + "\n")
    elif case == "no_ca":
        path.write_text("\n".join(ln for ln in _lines("2cviA.pdb.gz") if ln[12:16] != " CA ") + "\n")
    elif case == "bad_coord":
        lines = _lines("2cviA.pdb.gz")
        lines[5] = lines[5][:30] + "  12.x4a" + lines[5][38:]
        path.write_text("\n".join(lines) + "\n")
    elif case == "no_records":
        path.write_text("HEADER    TRANSFERASE\nREMARK   2 RESOLUTION. 2.00 ANGSTROMS.\nEND\n")
    elif case == "cif_no_atoms":
        path = tmp_path / "x.cif"
        path.write_text("data_1ABC\n_entry.id 1ABC\n_cell.length_a 10.0\n")
    elif case == "text":
        path = tmp_path / "notes.txt"
        path.write_text("just some notes\nnothing structural\n")
    with pytest.raises(StructureError) as info:
        read_structure(path)
    msg = str(info.value)
    assert reason in msg and "\n" not in msg and msg.startswith(str(path) + ": ")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data not present")
def test_all_shared_pdb_dssp_files_parse_with_dssp_lengths():
    files = sorted(SHARED.glob("*.pdb.gz"))
    assert len(files) >= 50
    for f in files:
        p = read_structure(f)
        assert len(p) > 0 and np.isfinite(p.ca).all()
        dssp = f.with_suffix(".dssp")
        if dssp.exists():
            assert len(p) == len(dssp.read_text().split()[0]), f.name


def test_content_beats_misleading_extension(tmp_path):
    cif_as_pdb = tmp_path / "3mht.pdb"
    cif_as_pdb.write_bytes(gzip.decompress((DATA / "3mht.cif.gz").read_bytes()))
    assert read_structure(cif_as_pdb).sequence == read_structure(DATA / "3mht.pdb.gz").sequence
    pdb_no_suffix = tmp_path / "2cviA.structure"
    pdb_no_suffix.write_bytes(gzip.decompress((DATA / "2cviA.pdb.gz").read_bytes()))
    assert len(read_structure(pdb_no_suffix)) == 83


def test_empty_chain_selection_refused():
    with pytest.raises(StructureError, match="empty chain selection"):
        read_structure(DATA / "2cviA.pdb.gz", chains=[])
