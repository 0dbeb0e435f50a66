"""Atom3DLMDB + lmdb_summary on LMDBs written by the atom3d package's own writer from real PDBs."""
from __future__ import annotations

import gzip
import json
import pickle
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pandas as pd
import pytest

from pa_geo.formats.atom3d import Atom3DLMDB, lmdb_summary
from pa_geo.errors import DatasetError

da = pytest.importorskip("atom3d.datasets")
serialize = pytest.importorskip("atom3d.datasets.datasets").serialize
DATA = Path(__file__).resolve().parents[1] / "data" / "atom3d"
PDBS = sorted(DATA.glob("*.pdb.gz"))  # 1ahsA, 1lpbA, 2hhb
RES_CLASS = {"HIS": 0, "LYS": 1, "ARG": 2, "ASP": 3, "GLU": 4, "SER": 5, "THR": 6, "ASN": 7, "GLN": 8, "ALA": 9,
             "VAL": 10, "LEU": 11, "ILE": 12, "MET": 13, "PHE": 14, "TYR": 15, "TRP": 16, "PRO": 17, "GLY": 18,
             "CYS": 19}


@pytest.fixture(scope="module")
def pdb_items() -> dict[str, dict]:
    ds = da.load_dataset([str(p) for p in PDBS], "pdb")
    return {ds[i]["id"].split(".")[0]: ds[i] for i in range(len(ds))}


def _write(items: list[dict], path: Path, fmt: str) -> Path:
    da.make_lmdb_dataset(items, str(path), serialization_format=fmt)
    return path


def _lba_item(hb: dict, scores) -> dict:
    """LBA-shaped item from 2HHB: ligand = chain A's heme, pocket = protein atoms within 6 A of it."""
    atoms = hb["atoms"]
    protein = atoms[atoms["hetero"].str.strip() == ""].reset_index(drop=True)
    hem_res = atoms[(atoms["resname"] == "HEM") & (atoms["chain"] == "A")]["residue"].iloc[0]
    ligand = atoms[(atoms["resname"] == "HEM") & (atoms["residue"] == hem_res) & (atoms["chain"] == "A")]
    d = np.linalg.norm(protein[["x", "y", "z"]].to_numpy()[:, None] - ligand[["x", "y", "z"]].to_numpy()[None], axis=-1)
    pocket_res = protein.loc[d.min(1) < 6.0, ["chain", "residue"]].drop_duplicates()
    pocket = protein.merge(pocket_res, on=["chain", "residue"])
    return {"atoms_protein": protein, "atoms_pocket": pocket, "atoms_ligand": ligand.reset_index(drop=True),
            "scores": scores, "id": "2hhb", "seq": [[["2hhb", 0, "2hhb", 0, "A"], "VLSPADKTNV"]]}


def _msp_item(item: dict) -> dict:
    """MSP-shaped item from 1lpbA: the mutant truncates residue 10's side chain to alanine (keeps N CA C O CB)."""
    orig = item["atoms"]
    num = orig["residue"].unique()[9]
    wt = orig.loc[orig["residue"] == num, "resname"].iloc[0]
    drop = (orig["residue"] == num) & ~orig["name"].isin(["N", "CA", "C", "O", "CB"])
    mut = orig[~drop].copy()
    mut.loc[mut["residue"] == num, "resname"] = "ALA"
    one = {"GLY": "G", "LEU": "L", "SER": "S", "CYS": "C", "ASN": "N", "GLN": "Q", "ASP": "D", "GLU": "E",
           "ILE": "I", "LYS": "K", "THR": "T", "VAL": "V", "PRO": "P", "HIS": "H"}.get(wt, "X")
    return {"original_atoms": orig, "mutated_atoms": mut.reset_index(drop=True), "label": "1",
            "id": f"1LPB_A_A_{one}A{num}A"}


def _res_item(item: dict) -> dict:
    atoms = item["atoms"]
    picks = atoms.drop_duplicates(["chain", "residue"]).iloc[[3, 17, 40]]
    labels = pd.DataFrame({"subunit": [f"{c}_{r}_{n}" for c, r, n in zip(picks.chain, picks.residue, picks.resname)],
                           "label": [RES_CLASS[n] for n in picks.resname], "x": 0.0, "y": 0.0, "z": 0.0})
    subunits = [atoms.index[(atoms.residue - r).abs() <= 3].tolist() for r in picks.residue]
    return {"atoms": atoms, "labels": labels, "subunit_indices": subunits, "id": "1ahsA"}


@pytest.fixture(scope="module")
def task_lmdbs(tmp_path_factory, pdb_items) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("a3")
    series = pd.Series({"neglog_aff": 7.25}, name="2hhb")  # the prepare script stores a Series row
    psr = {"atoms": pdb_items["1ahsA"]["atoms"], "id": str(("T0999", "1ahsA_decoy")),
           "scores": pd.Series({"gdt_ts": 0.61, "rmsd": 3.2}, name="1ahsA")}
    return {
        "generic_json": _write(list(pdb_items.values()), root / "generic_json", "json"),
        "generic_msgpack": _write(list(pdb_items.values()), root / "generic_msgpack", "msgpack"),
        "lba_json": _write([_lba_item(pdb_items["2hhb"], series)], root / "lba_json", "json"),
        "lba_msgpack": _write([_lba_item(pdb_items["2hhb"], {"neglog_aff": 7.25})], root / "lba_mp", "msgpack"),
        "psr_json": _write([psr], root / "psr_json", "json"),
        "msp_msgpack": _write([_msp_item(pdb_items["1lpbA"])], root / "msp_mp", "msgpack"),
        "res_json": _write([_res_item(pdb_items["1ahsA"])], root / "res_json", "json"),
    }


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_frames_round_trip_through_atom3d_writer(task_lmdbs, pdb_items, fmt):
    ds = Atom3DLMDB(task_lmdbs[f"generic_{fmt}"])
    assert len(ds) == 3 and ds.format == fmt and ds.ids() == [p.name for p in PDBS]
    for i, pdb in enumerate(PDBS):
        item = ds[i]
        ref = pdb_items[pdb.name.split(".")[0]]["atoms"]
        assert isinstance(item["atoms"], pd.DataFrame) and list(item["atoms"].columns) == list(ref.columns)
        assert np.allclose(item["atoms"][["x", "y", "z"]].to_numpy(), ref[["x", "y", "z"]].to_numpy(), atol=1e-6)
        assert (item["atoms"]["name"].to_numpy() == ref["name"].to_numpy()).all()
    assert ds.index_of("2hhb.pdb.gz") == 2
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    assert clone[1]["id"] == ds[1]["id"] == "1lpbA.pdb.gz"
    ds.close()
    assert len(ds[0]["atoms"]) == len(clone[0]["atoms"])  # reopened on the next access


def test_legacy_type_strings_and_read_only_copy_with_stray_lock(tmp_path):
    copy = tmp_path / "legacy"
    shutil.copytree(DATA / "legacy_pdb_generic", copy)
    (copy / "lock.mdb").write_bytes(b"not a real lock file")
    ds = Atom3DLMDB(copy)
    assert len(ds) == 10 and isinstance(ds[8]["atoms"], pd.DataFrame) and len(ds[8]["atoms"]) == 4779
    # atom3d itself (under pandas 3) leaves these legacy frames as plain dicts: our reader rebuilds the same data
    shutil.copytree(DATA / "legacy_pdb_generic", tmp_path / "for_atom3d")  # lmdb allows one open per process
    theirs = da.LMDBDataset(str(tmp_path / "for_atom3d"))[8]["atoms"]
    if isinstance(theirs, dict):
        theirs = pd.DataFrame(**theirs)
    pd.testing.assert_frame_equal(ds[8]["atoms"], theirs, check_dtype=False)


def test_split_dicts_without_types_are_rebuilt(tmp_path, pdb_items):
    path = tmp_path / "untyped"
    env = lmdb.open(str(path), map_size=1 << 26)
    item = {"atoms": pdb_items["1lpbA"]["atoms"], "id": "1lpbA"}
    with env.begin(write=True) as txn:
        txn.put(b"0", gzip.compress(serialize(item, "json")))  # no 'types' entry
        txn.put(b"num_examples", b"1")
        txn.put(b"serialization_format", b"json")
        txn.put(b"id_to_idx", json.dumps({"1lpbA": 0}).encode())
    env.close()
    got = Atom3DLMDB(path)[0]["atoms"]
    assert isinstance(got, pd.DataFrame) and len(got) == len(item["atoms"])


def test_pickle_lmdb_refused_unless_opted_in(tmp_path, pdb_items):
    path = _write([pdb_items["1lpbA"]], tmp_path / "pkl", "pkl")
    with pytest.raises(DatasetError, match="pickle") as err:
        Atom3DLMDB(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert len(Atom3DLMDB(path, allow_pickle=True)[0]["atoms"]) == len(pdb_items["1lpbA"]["atoms"])


def test_bad_paths_and_corrupt_items(tmp_path, task_lmdbs):
    with pytest.raises(DatasetError, match="no such"):
        Atom3DLMDB(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no data.mdb"):
        Atom3DLMDB(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(task_lmdbs["psr_json"], broken)
    env = lmdb.open(str(broken))
    with env.begin(write=True) as txn:
        txn.put(b"0", b"garbage, not gzip")
    env.close()
    ds = Atom3DLMDB(broken)
    with pytest.raises(DatasetError, match=r"\[0\]: item is not valid gzip"):
        ds[0]
    with pytest.raises(IndexError):
        ds[5]


@pytest.mark.parametrize("key,task,label", [("lba_json", "lba", 7.25), ("lba_msgpack", "lba", 7.25),
                                            ("psr_json", "psr", 0.61), ("msp_msgpack", "msp", 1),
                                            ("res_json", "res", None), ("generic_json", None, None)])
def test_lmdb_summary(task_lmdbs, key, task, label):
    s = lmdb_summary(task_lmdbs[key])
    ds = Atom3DLMDB(task_lmdbs[key])
    assert s["num_examples"] == len(ds) and s["task"] == task and len(s["items"]) == len(ds)
    first = s["items"][0]
    frames = {k: len(v) for k, v in ds[0].items() if isinstance(v, pd.DataFrame) and {"x", "name", "chain"} <= set(v)}
    assert first["atoms"] == frames and all(n > 0 for n in frames.values())
    assert first["label"] is None if label is None else first["label"] == pytest.approx(label)
    json.dumps(s)  # what `pa-geo inspect` prints


@pytest.mark.parametrize("name", ["1ahsA", "1lpbA", "2hhb"])
def test_frame_to_protein_agrees_with_read_structure(pdb_items, name):
    from pa_geo.formats.atom3d_frames import frame_to_protein
    from pa_geo.io import read_structure

    ours = frame_to_protein(pdb_items[name]["atoms"], name)
    ref = read_structure(DATA / f"{name}.pdb.gz")
    assert ours.sequence == ref.sequence and list(ours.chain_ids) == list(ref.chain_ids)
    assert np.array_equal(ours.residue_numbers, ref.residue_numbers)
    assert np.allclose(ours.backbone, ref.backbone, equal_nan=True)
    assert np.array_equal(ours.chain_breaks, ref.chain_breaks)
    assert np.array_equal(ours.atoms.residue_index, ref.atoms.residue_index)
    assert np.array_equal(ours.atoms.hetero, ref.atoms.hetero)
