"""ATOM3D task loaders (LBA, PSR, MSP, PPI, RES) on LMDBs written in atom3d's format from real structures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from atom3d_task_testkit import legacy_frames, write_atom3d_lmdb
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
    (rec,) = get_task("lba_60").load(tmp_path, "val")
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
    recs = get_task("psr").load(tmp_path, "test")
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


def test_ppi_neighbours_and_sampled_negatives(tmp_path: Path, frames) -> None:
    hb = frames["2hhb.pdb"]
    a, b = _chain(hb, "A").assign(subunit="2hhb_A"), _chain(hb, "B").assign(subunit="2hhb_B")
    ca_a, ca_b = a[a["name"] == "CA"], b[b["name"] == "CA"]
    close = np.argwhere(cdist(ca_a[["x", "y", "z"]], ca_b[["x", "y", "z"]]) < 8.0)
    assert len(close) > 10  # the alpha1-beta1 interface
    nb = pd.DataFrame({"ensemble0": "2hhb", "subunit0": "2hhb_A", "structure0": "2hhb", "model0": 0,
                       "chain0": "A", "residue0": ca_a["residue"].to_numpy()[close[:, 0]],
                       "ensemble1": "2hhb", "subunit1": "2hhb_B", "structure1": "2hhb", "model1": 0,
                       "chain1": "B", "residue1": ca_b["residue"].to_numpy()[close[:, 1]], "label": 1})
    item = {"atoms_pairs": pd.concat([a, b], ignore_index=True), "atoms_neighbors": nb, "id": "2hhb"}
    write_atom3d_lmdb(tmp_path / "DIPS-split" / "data" / "test", [item])
    (rec,) = get_task("atom3d_ppi").load(tmp_path, "test")
    pa, pb = rec.proteins
    assert (len(pa), len(pb)) == (141, 146)
    pairs, label = rec.extra["pair_index"], rec.label
    assert pairs.shape == (2, 2 * len(close)) and label.dtype == np.float32
    ca = [p.ca for p in rec.proteins]
    dist = np.linalg.norm(ca[0][pairs[0]] - ca[1][pairs[1]], axis=1)
    assert ((dist < 8.0) == (label == 1)).all()  # positives exactly the CA-CA < 8 A pairs, negatives not
    assert label.sum() == len(close)
    again = get_task("atom3d_ppi").load(tmp_path, "test")[0]
    assert (again.extra["pair_index"] == pairs).all()  # seeded negatives


def test_res_labels_from_indices_release(tmp_path: Path, frames) -> None:
    atoms = _chain(frames["2hhb.pdb"], "A")
    labels = pd.DataFrame([["A_10_VAL", 10, 0.0, 0.0, 0.0], ["A_7_LYS", 1, 0.0, 0.0, 0.0]],
                          columns=["subunit", "label", "x", "y", "z"])
    item = {"atoms": atoms, "labels": labels, "subunit_indices": [[0, 1, 2], [3, 4]], "id": "2hhb"}
    write_atom3d_lmdb(tmp_path / "raw" / "RES" / "data", [item, item])
    idx = tmp_path / "split-by-cath-topology" / "indices"
    idx.mkdir(parents=True)
    (idx / "val_indices.txt").write_text("1\n")
    (rec,) = get_task("res").load(tmp_path, "val")
    p = rec.proteins[0]
    assert rec.label_mask.sum() == 2 and rec.label_mask[[6, 9]].all()
    assert p.sequence[9] == "V" and p.sequence[6] == "K"
    from pa_geo.io.protein import AMINO_ACIDS
    assert AMINO_ACIDS[rec.label[9]] == "V" and AMINO_ACIDS[rec.label[6]] == "K"
