"""frame_to_protein on real ATOM3D frames (legacy LMDB) and on real frames with altlocs / models / insertions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pa_geo.formats.atom3d import Atom3DLMDB
from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.formats.record_checks import DatasetWarning
from pa_geo.errors import DatasetError

LEGACY = Path(__file__).resolve().parents[1] / "data" / "atom3d" / "legacy_pdb_generic"
THREE = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
         "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
         "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    ds = Atom3DLMDB(LEGACY)
    return {ds[i]["id"]: ds[i]["atoms"] for i in range(len(ds))}


def test_single_chain_residues_backbone_and_atoms(frames):
    df = frames["1ahsA.pdb"]
    p = frame_to_protein(df, "1ahsA", source="legacy")
    residues = df.drop_duplicates(["chain", "residue", "insertion_code"])
    assert p.sequence == "".join(THREE[r] for r in residues["resname"])
    assert np.array_equal(p.residue_numbers, residues["residue"].to_numpy())
    ca = df[df["name"] == "CA"][["x", "y", "z"]].to_numpy(np.float32)
    assert np.allclose(p.ca, ca) and p.backbone_mask.all()
    assert len(p.atoms) == len(df) and (p.atoms.residue_index >= 0).all() and not p.atoms.hetero.any()
    assert p.chain_breaks[0] and p.chain_breaks.sum() == 1  # no gaps in this chain
    assert list(p.insertion_codes[:2]) == ["", ""] and p.has_structure


def test_multichain_hetero_water_and_nucleotides(frames):
    hb = frame_to_protein(frames["2hhb.pdb"], "2hhb")
    assert hb.chains == ["A", "B", "C", "D"] and len(hb) == 141 + 146 + 141 + 146
    non_res = hb.atoms.residue_index < 0
    assert set(hb.atoms.resname[non_res]) == {"HEM", "PO4", "HOH"} and hb.atoms.hetero[non_res].all()
    assert list(np.flatnonzero(hb.chain_breaks)) == [0, 141, 287, 428]
    mht = frame_to_protein(frames["pdb3mht.pdb"], "3mht")
    dna = np.isin(mht.atoms.resname.astype(str), ["DA", "DC", "DG", "DT"])
    assert dna.sum() > 0 and (mht.atoms.residue_index[dna] == -1).all()
    assert mht.chains == ["A"] and "X" not in mht.sequence


def test_first_model_and_first_altloc_win(frames):
    df = frames["1lpbA.pdb"].copy()
    res5 = df["residue"] == df["residue"].unique()[4]
    alt_a = df[res5].copy()
    alt_b = df[res5].copy()
    alt_a["altloc"], alt_b["altloc"] = "A", "B"
    alt_b[["x", "y", "z"]] += 1.5
    first = df.index[res5][0]
    df_alt = pd.concat([df.loc[:first - 1], alt_a, alt_b, df.loc[df.index[res5][-1] + 1:]], ignore_index=True)
    model2 = df.copy()
    model2["model"] = 1
    model2[["x", "y", "z"]] += 3.0
    both = pd.concat([df_alt, model2], ignore_index=True)
    p = frame_to_protein(both, "1lpbA")
    ref = frame_to_protein(df, "1lpbA")
    assert len(p.atoms) == len(ref.atoms) == len(df) and p.sequence == ref.sequence
    assert np.allclose(p.backbone, ref.backbone) and np.allclose(p.atoms.coords, ref.atoms.coords)


def test_insertion_codes_make_distinct_residues(frames):
    df = frames["1lpbA.pdb"].copy()
    numbers = df["residue"].unique()
    df.loc[df["residue"] == numbers[10], "insertion_code"] = "A"
    df.loc[df["residue"] == numbers[10], "residue"] = numbers[9]
    p = frame_to_protein(df, "1lpbA")
    assert len(p) == len(numbers)
    assert list(p.residue_numbers[9:11]) == [numbers[9]] * 2 and list(p.insertion_codes[9:11]) == ["", "A"]


def test_modified_residue_and_gap(frames):
    df = frames["1ahsA.pdb"].copy()
    met = df.index[df["resname"] == "MET"]
    assert len(met)
    first_met = df.loc[met[0], "residue"]
    rows = df["residue"] == first_met
    df.loc[rows, "resname"], df.loc[rows, "hetero"] = "MSE", "H_MSE"
    gap = df["residue"].unique()[20]
    df = df[df["residue"] != gap]
    p = frame_to_protein(df, "1ahsA")
    ref = frame_to_protein(frames["1ahsA.pdb"], "1ahsA")
    assert len(p) == len(ref) - 1
    i = int(np.flatnonzero(p.residue_numbers == first_met)[0])
    assert p.sequence[i] == "M" and p.atoms.hetero[p.atoms.residue_index == i].all()
    assert p.chain_breaks[20] and p.chain_breaks.sum() == 2


def test_bad_frames_raise_dataset_error(frames):
    with pytest.raises(DatasetError, match=r"lacks column\(s\) x"):
        frame_to_protein(frames["1ahsA.pdb"].drop(columns=["x"]), "bad", source="f.lmdb")
    bad = frames["1ahsA.pdb"].copy()
    bad["y"] = "oops"
    with pytest.raises(DatasetError, match="non-numeric"):
        frame_to_protein(bad, "bad")
    with pytest.raises(DatasetError, match="expected an atoms DataFrame"):
        frame_to_protein({"columns": []}, "bad")


def test_non_finite_and_impossible_coordinates(frames):
    df = frames["1ahsA.pdb"].copy()
    ref = frame_to_protein(df, "1ahsA")
    nan = df.copy()
    ca = np.flatnonzero(nan["name"].to_numpy() == "CA")[5]
    nan.loc[nan.index[[ca, ca + 3]], "x"] = np.nan  # residue 6's CA and one more atom
    with pytest.warns(DatasetWarning, match=r"f.lmdb\[1ahsA\]: dropped 2 of \d+ atoms with non-finite coordinates "
                                            r"\(first: atom 'CA' of residue"):
        p = frame_to_protein(nan, "1ahsA", source="f.lmdb")
    assert len(p) == len(ref) and np.isnan(p.backbone[5, 1]).all() and len(p.atoms) == len(ref.atoms) - 2
    gone = df.copy()
    gone[["x", "y", "z"]] = np.nan
    with pytest.raises(DatasetError, match=r"^f.lmdb\[7\]: no atom has finite coordinates \(all \d+ are NaN/inf\)$"):
        frame_to_protein(gone, 7, source="f.lmdb")
    huge = df.copy()
    huge.loc[huge.index[10], "z"] = 3e38
    with pytest.raises(DatasetError, match=r"f.lmdb\[1ahsA\]: atom '\w+' of residue \d+ has coordinates .* beyond"):
        frame_to_protein(huge, "1ahsA", source="f.lmdb")
