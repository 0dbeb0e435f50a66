"""ATOM3D LMDBs written the way atom3d's ``make_lmdb_dataset`` does (json serialization, gzip, pandas-1.x type
strings), and RES items as ATOM3D's ``ResTransform`` writes them. Real frames come from the shipped legacy ATOM3D
LMDB (2HHB, 1AHS, ... written by the atom3d package itself).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import lmdb
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from pa_geo.formats.atom3d import Atom3DLMDB
from tests.helpers import TEST_DATA

LEGACY = TEST_DATA / "atom3d" / "legacy_pdb_generic"
_LEGACY_TYPES = {pd.DataFrame: "<class 'pandas.core.frame.DataFrame'>",
                 pd.Series: "<class 'pandas.core.series.Series'>"}


def legacy_frames() -> dict[str, pd.DataFrame]:
    """Atoms frames of the shipped legacy LMDB by id (``2hhb.pdb``, ``1ahsA.pdb``, ...)."""
    ds = Atom3DLMDB(LEGACY)
    try:
        return {ds[i]["id"]: ds[i]["atoms"] for i in range(len(ds))}
    finally:
        ds.close()


def write_atom3d_lmdb(path: Path, items: list[dict]) -> Path:
    """atom3d's ``make_lmdb_dataset(..., serialization_format='json')`` layout, with pandas-1.x type strings."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 28)
    id_to_idx = {}
    with env.begin(write=True) as txn:
        for i, item in enumerate(items):
            item = dict(item)
            item["types"] = {k: _LEGACY_TYPES.get(type(v), str(type(v))) for k, v in item.items()}
            blob = json.dumps(item, default=lambda df: json.loads(df.to_json(orient="split", double_precision=6)))
            txn.put(str(i).encode(), gzip.compress(blob.encode()))
            id_to_idx[str(item["id"])] = i
        txn.put(b"num_examples", str(len(items)).encode())
        txn.put(b"serialization_format", b"json")
        txn.put(b"id_to_idx", json.dumps(id_to_idx).encode())
    env.close()
    return path


# ATOM3D RES, examples/res/dataset/prepare_lmdb.py (ResTransform): class order, kept elements, pseudo-CB offset
RES_CLASS = {"HIS": 0, "LYS": 1, "ARG": 2, "ASP": 3, "GLU": 4, "SER": 5, "THR": 6, "ASN": 7, "GLN": 8, "ALA": 9,
             "VAL": 10, "LEU": 11, "ILE": 12, "MET": 13, "PHE": 14, "TYR": 15, "TRP": 16, "PRO": 17, "GLY": 18,
             "CYS": 19}
RES_ELEMENTS = ("C", "O", "N", "S", "P", "SE")
RES_CB_OFFSET = np.array([-0.5311191, -0.75842446, 1.2198311], dtype=np.float32)
RES_RADIUS = 10.0 * np.sqrt(3)


def res_item(atoms: pd.DataFrame, item_id: str, residues: list[tuple[str, int]] | None = None) -> dict:
    """A RES item as ATOM3D's ResTransform writes it (``residues`` limits which residues get labelled)."""
    df = atoms.dropna(subset=["x", "y", "z"])
    df = df[df["element"].isin(RES_ELEMENTS) & (df["hetero"].str.strip() == "")].reset_index(drop=True)
    labels, subunits = [], []
    for (chain, res, name), group in df.groupby(["chain", "residue", "resname"]):
        if name not in RES_CLASS or (residues is not None and (chain, res) not in residues):
            continue
        if not {"N", "CA", "C", "O"} <= set(group["name"]):
            continue
        cb = group.loc[group["name"] == "CA", ["x", "y", "z"]].to_numpy(np.float32)[0] + RES_CB_OFFSET
        rest = df[(df["chain"] != chain) | (df["residue"] != res) | df["name"].isin(["N", "CA", "C", "O"])]
        tree = cKDTree(rest[["x", "y", "z"]].to_numpy())
        subunits.append(rest.index[sorted(tree.query_ball_point(cb, r=RES_RADIUS))].tolist())
        labels.append([f"{chain}_{res}_{name}", RES_CLASS[name], *cb.tolist()])
    return {"atoms": df, "labels": pd.DataFrame(labels, columns=["subunit", "label", "x", "y", "z"]),
            "subunit_indices": subunits, "id": item_id}
