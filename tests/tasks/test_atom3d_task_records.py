"""ATOM3D task loaders (LBA, PSR, MSP; streaming) on LMDBs written in atom3d's format from real structures.

RES and PPI: ``test_atom3d_res_ppi.py``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from tests.helpers.atom3d import legacy_frames, write_atom3d_lmdb
from pa_geo.formats.atom3d_loader import Atom3DRecords
from pa_geo.formats.atom3d_tasks import parse_mutation
from pa_geo.errors import DatasetError
from pa_geo.tasks import get_task


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return legacy_frames()


def _chain(df: pd.DataFrame, chain: str) -> pd.DataFrame:
    return df[(df["chain"] == chain) & (df["hetero"].str.strip() == "")].reset_index(drop=True)


def test_lba_pocket_ligand_and_label(tmp_path: Path, frames) -> None:
    hb = frames["2hhb.pdb"]
    protein = _chain(hb, "A")
    pocket = protein[protein["residue"].between(40, 100)]
    ligand = hb[(hb["chain"] == "A") & (hb["hetero"] == "H_HEM")]
    item = {"atoms_protein": protein, "atoms_pocket": pocket, "atoms_ligand": ligand, "id": "2hhb",
            "scores": {"neglog_aff": 6.5}, "seq": [[["2hhb", 0, "2hhb", 0, "A"], "VLSPADK"]]}
    write_atom3d_lmdb(tmp_path / "split-by-sequence-identity-60" / "data" / "val", [item])
    records = get_task("lba_60").load(tmp_path, "val")
    assert not isinstance(records, list)  # streamed from the LMDB, never a whole split in memory
    (rec,) = records
    assert rec.label == pytest.approx(6.5) and rec.id == "2hhb"
    assert len(rec.proteins[0]) == 61 and rec.proteins[0].residue_numbers.min() == 40
    assert len(rec.ligand) == 0 and len(rec.ligand.atoms) == len(ligand) == 43
    np.testing.assert_allclose(rec.ligand.atoms.coords, ligand[["x", "y", "z"]].to_numpy(), atol=1e-5)
    with pytest.raises(DatasetError, match="split-by-sequence-identity-30/data/val: ATOM3D split 'val' not found"):
        get_task("lba_30").load(tmp_path, "val")


def test_psr_series_scores_and_target_ids(tmp_path: Path, frames) -> None:
    atoms = frames["1ahsA.pdb"]
    items = [{"atoms": atoms, "id": str(("T0759", f"server{i:02d}_TS1")), "file_path": "x.pdb",
              "scores": pd.Series({"gdt_ts": 0.25 * (i + 1), "rmsd": 3.0, "tm": 0.5})} for i in range(2)]
    write_atom3d_lmdb(tmp_path / "split-by-year" / "data" / "test", items)
    recs = list(get_task("psr").load(tmp_path, "test"))
    assert [r.label for r in recs] == pytest.approx([0.25, 0.5])
    assert [r.extra["target"] for r in recs] == ["T0759", "T0759"]
    assert [r.extra["decoy"] for r in recs] == ["server00_TS1", "server01_TS1"]
    assert recs[0].proteins[0].sequence.startswith("TGPYAGAVEV")  # 1AHS chain A from residue 126


def test_msp_original_mutated_and_index(tmp_path: Path, frames) -> None:
    orig = _chain(frames["2hhb.pdb"], "A")
    mut = orig.copy()
    mut.loc[mut["residue"] == 10, "resname"] = "ALA"
    mut = mut[~((mut["residue"] == 10) & ~mut["name"].isin(["N", "CA", "C", "O", "CB"]))]
    item = {"original_atoms": orig, "mutated_atoms": mut, "label": "1", "id": "2HHB_A_B_VA10A"}
    write_atom3d_lmdb(tmp_path / "split-by-sequence-identity-30" / "data" / "train", [item])
    (rec,) = get_task("msp").load(tmp_path, "train")
    assert rec.label == 1 and rec.extra["mutation"] == "VA10A"
    o, m = rec.proteins
    assert rec.extra["mutation_index"].tolist() == [9, 9]
    assert o.sequence[9] == "V" and m.sequence[9] == "A" and len(o) == len(m) == 141


def test_records_stream_and_skip_a_bad_item(tmp_path: Path, frames) -> None:
    atoms = frames["1ahsA.pdb"]
    good = [{"atoms": atoms, "id": str(("T1", f"d{i}")), "scores": {"gdt_ts": 0.1 * i}} for i in range(3)]
    broken = {"atoms": atoms.drop(columns=["x"]), "id": str(("T1", "broken")), "scores": {"gdt_ts": 0.5}}
    write_atom3d_lmdb(tmp_path / "split-by-year" / "data" / "train", [good[0], broken, good[1], good[2]])
    records = get_task("psr").load(tmp_path, "train")
    assert isinstance(records, Atom3DRecords) and records.num_items == 4
    it = iter(records)
    assert next(it).extra["decoy"] == "d0"
    with pytest.raises(DatasetError, match=r"train\[1\]\[T1/broken\]: atoms frame lacks column\(s\) x") as err:
        next(it)
    assert "\n" not in str(err.value)
    assert [r.extra["decoy"] for r in it] == ["d1", "d2"]  # the iterator goes on after the bad record
    again = iter(records)  # each iter() starts over
    assert next(again).extra["decoy"] == "d0"


def test_lba_psr_msp_from_atom3d_package_writer(tmp_path: Path) -> None:
    """Items written by atom3d's own ``make_lmdb_dataset`` (json and msgpack) -> the same records."""
    da = pytest.importorskip("atom3d.datasets")
    data = Path(__file__).resolve().parents[1] / "data" / "atom3d"
    items = {p.name.split(".")[0]: it for p in sorted(data.glob("*.pdb.gz"))
             for it in [da.load_dataset([str(p)], "pdb")[0]]}
    hb = items["2hhb"]["atoms"]
    protein = hb[hb["hetero"].str.strip() == ""].reset_index(drop=True)
    ligand = hb[(hb["resname"] == "HEM") & (hb["chain"] == "A")].reset_index(drop=True)
    lba = {"atoms_protein": protein, "atoms_pocket": protein[protein["chain"] == "A"], "atoms_ligand": ligand,
           "scores": pd.Series({"neglog_aff": 7.25}, name="2hhb"), "id": "2hhb"}
    (tmp_path / "split-by-sequence-identity-30" / "data").mkdir(parents=True)
    da.make_lmdb_dataset([lba], str(tmp_path / "split-by-sequence-identity-30" / "data" / "test"),
                         serialization_format="json")
    (rec,) = get_task("lba").load(tmp_path, "test")
    assert rec.label == pytest.approx(7.25) and len(rec.proteins[0]) == 141 and len(rec.ligand.atoms) == 43
    orig = items["1lpbA"]["atoms"]
    num = orig["residue"].unique()[9]
    keep = (orig["residue"] != num) | orig["name"].isin(["N", "CA", "C", "O", "CB"])
    mut = orig[keep].copy()
    mut.loc[mut["residue"] == num, "resname"] = "ALA"
    wt = orig.loc[orig["residue"] == num, "resname"].iloc[0]
    one = {"ASP": "D", "GLU": "E", "LYS": "K", "SER": "S", "THR": "T", "LEU": "L", "ILE": "I", "VAL": "V",
           "ASN": "N", "GLN": "Q", "ARG": "R", "PHE": "F", "TYR": "Y", "GLY": "G", "PRO": "P", "HIS": "H"}[wt]
    msp = {"original_atoms": orig, "mutated_atoms": mut.reset_index(drop=True), "label": "1",
           "id": f"1LPB_A_A_{one}A{num}A"}
    da.make_lmdb_dataset([msp], str(tmp_path / "split-by-sequence-identity-30" / "data" / "val"),
                         serialization_format="msgpack")
    (rec,) = get_task("msp").load(tmp_path, "val")
    o, m = rec.proteins
    i, j = rec.extra["mutation_index"].tolist()
    assert parse_mutation(rec.id)[2] == num and o.residue_numbers[i] == num == m.residue_numbers[j]
    assert m.sequence[j] == "A" and o.sequence[i] == one and rec.label == 1
