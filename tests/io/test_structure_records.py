"""Structure readers never drop or reorder atoms silently: MODEL/ENDMDL nesting, misplaced duplicate residues and
coordinates outside what the format holds are refused with the line number (real files, minimal edits)."""
from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from pa_geo.errors import StructureError
from pa_geo.io import read_structure
from pa_geo.io.structure import StructureWarning

DATA = Path(__file__).resolve().parents[1] / "data"


def _lines(name: str) -> list[str]:
    return gzip.open(DATA / name, "rt").read().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(StructureError) as err:
        read_structure(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    return msg[len(str(path)) + 2:]


def _residue_starts(lines: list[str]) -> list[int]:
    """Line index of the first ATOM record of every residue (columns 22-27: chain, number, insertion code)."""
    starts, last = [], None
    for i, line in enumerate(lines):
        if line.startswith("ATOM") and line[21:27] != last:
            starts.append(i)
            last = line[21:27]
    return starts


@pytest.fixture(scope="module")
def ahs() -> list[str]:
    """1ahsA: a real 126-residue chain without any MODEL record."""
    return _lines("atom3d/1ahsA.pdb.gz")


def test_stray_model_before_the_last_residues_is_refused_not_a_silent_4_residue_chain(tmp_path, ahs):
    assert len(read_structure(_write(tmp_path / "orig.pdb", ahs))) == 126
    cut = _residue_starts(ahs)[-4]
    path = _write(tmp_path / "stray.pdb", ahs[:cut] + ["MODEL        1"] + ahs[cut:])
    msg = _refusal(path)  # biotite alone reads the 4 residues after the MODEL line and drops the 122 before it
    assert msg == (f"line {cut + 1}: MODEL record after atom records that belong to no model (from line 1): a stray "
                   f"MODEL record, or a missing MODEL before line 1")


def test_model_nesting_in_an_nmr_file(tmp_path):
    nmr = _lines("2cviA_nmr.pdb.gz")
    ends = [i for i, line in enumerate(nmr) if line.startswith("ENDMDL")]
    first = read_structure(DATA / "2cviA_nmr.pdb.gz")
    no_end = nmr[:ends[0]] + nmr[ends[0] + 1:]  # model 1 never closed: MODEL 2 inside it
    assert _refusal(_write(tmp_path / "a.pdb", no_end)).startswith(
        f"line {ends[0] + 1}: MODEL record inside the model opened at line 1 (no ENDMDL closes it)")
    mid = _residue_starts(nmr)[40]
    early_end = nmr[:mid] + ["ENDMDL"] + nmr[mid:]  # atoms after it belong to no model
    assert _refusal(_write(tmp_path / "b.pdb", early_end)) == (
        f"line {mid + 2}: atom record outside any model, after the ENDMDL at line {mid + 1} (a stray ENDMDL, or a "
        f"missing MODEL record)")
    orphan = nmr[:ends[0] + 1] + ["ENDMDL"] + nmr[ends[0] + 1:]
    msg = _refusal(_write(tmp_path / "c.pdb", orphan))
    assert msg == f"line {ends[0] + 2}: ENDMDL without a MODEL record before it"
    last_open = nmr[:ends[-1]] + nmr[ends[-1] + 1:]  # a missing final ENDMDL closes at the end of the file
    assert read_structure(_write(tmp_path / "d.pdb", last_open)).sequence == first.sequence
    second = read_structure(_write(tmp_path / "e.pdb", nmr), model=1)
    assert second.sequence == first.sequence and not np.allclose(second.backbone, first.backbone)


def test_lone_endmdl_in_a_file_without_models_changes_nothing(tmp_path, ahs):
    mid = _residue_starts(ahs)[60]
    p = read_structure(_write(tmp_path / "x.pdb", ahs[:mid] + ["ENDMDL"] + ahs[mid:] + ["ENDMDL"]))
    assert len(p) == 126 and p.sequence == read_structure(_write(tmp_path / "o.pdb", ahs)).sequence


def test_misplaced_duplicate_residue_is_refused_with_both_lines(tmp_path, ahs):
    starts = _residue_starts(ahs)
    ca = next(i for i in range(starts[49], starts[50]) if ahs[i][12:16] == " CA ")
    moved = ahs[:starts[6]] + [ahs[ca]] + ahs[starts[6]:]  # residue 50's CA again, after residue 6
    msg = _refusal(_write(tmp_path / "dup.pdb", moved))
    res = f"A{int(ahs[ca][22:26])}"
    assert msg == (f"line {starts[49] + 2} (atom N of residue {res}): residue {res} appears again after other residues "
                   f"(first at line {starts[6] + 1} (atom CA of residue {res})): duplicated or out-of-order atom "
                   f"records")


def test_adjacent_duplicate_line_keeps_every_residue_in_order(tmp_path, ahs):
    orig = read_structure(_write(tmp_path / "o.pdb", ahs))
    i = _residue_starts(ahs)[30] + 1
    p = read_structure(_write(tmp_path / "d.pdb", ahs[:i + 1] + [ahs[i]] + ahs[i + 1:]))
    assert p.sequence == orig.sequence and (p.residue_numbers == orig.residue_numbers).all()


@pytest.mark.parametrize("value, ok", [("9999.999", True), ("-999.999", True), ("10000.00", False),
                                       ("-1000.00", False), (" 3.0e38 ", False), ("  1e+39 ", False)])
def test_pdb_coordinates_must_fit_the_columns(tmp_path, ahs, value, ok):
    i = _residue_starts(ahs)[10] + 1
    lines = list(ahs)
    lines[i] = lines[i][:38] + value + lines[i][46:]  # the y coordinate
    path = _write(tmp_path / "c.pdb", lines)
    if ok:
        assert len(read_structure(path)) == 126
    else:
        assert _refusal(path) == (f"line {i + 1}: y coordinate {value.strip()} is outside what PDB columns hold "
                                  f"(-999.999..9999.999)")


@pytest.mark.parametrize("start, stop, text, what", [
    (30, 38, "  12.x4a", "x coordinate '12.x4a' (columns 31-38) is not a number"),
    (22, 26, " 1?2", "residue number '1?2' (columns 23-26) is not a number"),
    (54, 60, "      ", "occupancy '' (columns 55-60) is not a number"),
])
def test_malformed_columns_name_the_line(tmp_path, ahs, start, stop, text, what):
    lines = list(ahs)
    lines[7] = lines[7][:start] + text + lines[7][stop:]
    assert _refusal(_write(tmp_path / "m.pdb", lines)) == f"malformed PDB file: line 8: {what}"


def test_nan_atoms_are_dropped_with_a_warning_naming_the_first(tmp_path, ahs):
    starts = _residue_starts(ahs)
    lines = list(ahs)
    for i in (starts[3] + 1, starts[3] + 4):  # residue 4's CA and one side-chain atom
        lines[i] = lines[i][:30] + "     nan" + lines[i][38:]
    with pytest.warns(StructureWarning, match=rf"dropped 2 atom\(s\) with non-finite coordinates \(first: line "
                                              rf"{starts[3] + 2} \(atom CA of residue A"):
        p = read_structure(_write(tmp_path / "n.pdb", lines))
    assert len(p) == 125  # a residue without a CA is not a residue (module policy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_structure(_write(tmp_path / "o.pdb", ahs))  # an intact file warns about nothing


def test_mmcif_coordinates_and_model_rows(tmp_path):
    cif = _lines("3mht.cif.gz")
    rows = [i for i, line in enumerate(cif) if line.startswith(("ATOM", "HETATM"))]
    orig = read_structure(DATA / "3mht.cif.gz")
    huge = list(cif)
    fields = huge[rows[50]].split()
    fields[13] = "3.0e38"  # Cartn_x
    huge[rows[50]] = " ".join(fields)
    msg = _refusal(_write(tmp_path / "huge.cif", huge))
    assert msg.startswith(f"line {rows[50] + 1} (atom ") and msg.endswith(": coordinates (3e+38, 36.122, 101.925) "
                                                                          "beyond +-100000 A (not a molecule)")
    split = list(cif)
    fields = split[rows[60]].split()
    fields[16] = "2"  # pdbx_PDB_model_num: one row of a "model 2" inside model 1
    split[rows[60]] = " ".join(fields)
    assert _refusal(_write(tmp_path / "split.cif", split)) == (
        f"line {rows[61] + 1}: atom rows of model 1 resume after another model's rows (each model's rows must "
        f"be contiguous)")
    assert read_structure(_write(tmp_path / "same.cif", cif)).sequence == orig.sequence


def test_unreadable_mmcif_rows_name_the_line(tmp_path):
    cif = _lines("3mht.cif.gz")
    rows = [i for i, line in enumerate(cif) if line.startswith(("ATOM", "HETATM"))]
    short = list(cif)
    short[rows[30]] = " ".join(short[rows[30]].split()[:-2])  # two values missing: biotite cannot split the loop
    assert _refusal(_write(tmp_path / "short.cif", short)) == (
        f"malformed mmCIF file: line {rows[30] + 1}: _atom_site row has 16 values, the loop has 18 columns")
    text = list(cif)
    fields = text[rows[40]].split()
    fields[14] = "12.5x"  # Cartn_y
    text[rows[40]] = " ".join(fields)
    assert _refusal(_write(tmp_path / "text.cif", text)) == (
        f"malformed mmCIF file: line {rows[40] + 1}: Cartn_y '12.5x' is not a number")


def test_binary_bytes_name_their_line(tmp_path, ahs):
    lines = list(ahs)
    lines[20] = lines[20][:40] + "\x01" + lines[20][41:]
    assert _refusal(_write(tmp_path / "bin.pdb", lines)) == (
        "binary content (1 control bytes in the first 65536 bytes, the first on line 21)")
