"""Write ATOM3D task LMDBs the way atom3d's ``make_lmdb_dataset`` does (json serialization, gzip, legacy types).

Frames are real: taken from the shipped legacy ATOM3D LMDB (2HHB, 1AHS written by the atom3d package).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import lmdb
import pandas as pd

from pa_geo.datasets.atom3d import Atom3DLMDB

LEGACY = Path(__file__).resolve().parents[1] / "data" / "atom3d" / "legacy_pdb_generic"
_LEGACY_TYPES = {pd.DataFrame: "<class 'pandas.core.frame.DataFrame'>",
                 pd.Series: "<class 'pandas.core.series.Series'>"}


def legacy_frames() -> dict[str, pd.DataFrame]:
    """Atoms frames of the shipped legacy LMDB by id (``2hhb.pdb``, ``1ahsA.pdb``, ...)."""
    ds = Atom3DLMDB(LEGACY)
    try:
        return {ds[i]["id"]: ds[i]["atoms"] for i in range(len(ds))}
    finally:
        ds.close()


def write_atom3d_lmdb(path: Path, items: list[dict]) -> None:
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
