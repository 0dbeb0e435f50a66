"""Read ATOM3D LMDB datasets without the ``atom3d`` package (the format of ATOM3D's ``atom3d/datasets/datasets.py``).

An ATOM3D LMDB holds ``b'0'..b'N-1'`` (gzip of a json / msgpack / pickle item dict), ``b'num_examples'``,
``b'serialization_format'`` and ``b'id_to_idx'``. Items carry atom frames as split-orient dicts plus a ``types``
entry naming each value's Python type. This reader rebuilds a DataFrame from a split dict whatever the type
string says (pandas < 3 wrote ``<class 'pandas.core.frame.DataFrame'>``, pandas >= 3 writes
``<class 'pandas.DataFrame'>``, some writers omit ``types``), and a Series from a split Series dict. Pickle
LMDBs can run arbitrary code when read and are refused unless ``allow_pickle=True``.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import zlib
from pathlib import Path
from typing import Any, Callable

import lmdb
import msgpack
import pandas as pd
from torch.utils.data import Dataset

from pa_geo.formats.atom3d_frames import REQUIRED_COLUMNS, frame_to_protein
from pa_geo.formats.atom3d_tasks import detect_task, item_label
from pa_geo.errors import DatasetError
from pa_geo.io.lmdb_env import LmdbAdvice, lmdb_errors, open_env

FORMATS = ("json", "msgpack", "pkl")
_FRAME_KEYS = frozenset({"columns", "index", "data"})
_SERIES_KEYS = frozenset({"index", "data"})
LMDB_ADVICE = LmdbAdvice("ATOM3D LMDB", DatasetError,
                         damaged="download or extract the dataset again")

__all__ = ["Atom3DLMDB", "frame_to_protein", "lmdb_summary", "atom_frames"]


def _rebuild(value: Any, type_str: str | None) -> Any:
    """A split-orient dict -> DataFrame / Series; anything else unchanged."""
    if not isinstance(value, dict):
        return value
    keys = set(value)
    if _FRAME_KEYS <= keys and keys <= _FRAME_KEYS | {"index_names", "column_names"} and (
            type_str is None or "DataFrame" in type_str or "dict" not in type_str):
        return pd.DataFrame(data=value["data"], index=value["index"], columns=value["columns"])
    if type_str is not None and "Series" in type_str and _SERIES_KEYS <= keys:
        return pd.Series(value["data"], index=value["index"], name=value.get("name"))
    return value


# py-lmdb refuses to open one environment twice in a process: every reader of a path shares one handle.
_ENVS: dict[tuple[str, int], lmdb.Environment] = {}


def _shared_env(path: Path) -> lmdb.Environment:
    key = (str(path.resolve()), os.getpid())
    if key not in _ENVS:  # size and every tree page checked first: a damaged file is one line, never a SIGBUS
        _ENVS[key] = open_env(path, LMDB_ADVICE, readonly=True, deep=True, readahead=False, meminit=False,
                              max_readers=1)
    return _ENVS[key]


class Atom3DLMDB(Dataset):
    """An ATOM3D LMDB directory as a map-style dataset of item dicts (atom frames as ``pd.DataFrame``).

    Args:
        path: the LMDB directory (holding ``data.mdb``) or the ``data.mdb`` file itself.
        allow_pickle: read ``pkl``-serialized LMDBs (pickle runs code: only for files you trust).
        transform: optional callable applied to each item dict.

    Opened read-only with ``lock=False`` (a stray ``lock.mdb`` or a read-only directory is fine); the environment
    is shared per process (DataLoader workers open their own). ``len(ds)`` = ``num_examples``; ``ds[i]`` -> item
    dict.
    """

    def __init__(self, path: str | os.PathLike, allow_pickle: bool = False,
                 transform: Callable[[dict], Any] | None = None) -> None:
        self.path = Path(path)
        self.allow_pickle = allow_pickle
        self.transform = transform
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such ATOM3D LMDB (directory with data.mdb)")
        if self.path.is_dir() and not (self.path / "data.mdb").exists():
            raise DatasetError(f"{self.path}: not an LMDB directory (no data.mdb)")
        try:
            self._read_keys()
        except DatasetError:
            self.close()  # a refused file keeps no handle open
            raise

    def _read_keys(self) -> None:
        with lmdb_errors(self.path, LMDB_ADVICE), self._open().begin(write=False) as txn:
            n, fmt, ids = txn.get(b"num_examples"), txn.get(b"serialization_format"), txn.get(b"id_to_idx")
        if n is None or fmt is None:
            raise DatasetError(f"{self.path}: not an ATOM3D LMDB (no num_examples / serialization_format key)")
        self.format = fmt.decode(errors="replace")
        if self.format not in FORMATS:
            raise DatasetError(f"{self.path}: unknown serialization_format {self.format!r} (json, msgpack, pkl)")
        if self.format == "pkl" and not self.allow_pickle:
            raise DatasetError(f"{self.path}: pickle-serialized LMDB refused (loading pickle can run arbitrary "
                               f"code); pass allow_pickle=True only for files you trust")
        try:
            self._num_examples = int(n)
        except ValueError:
            raise DatasetError(f"{self.path}: num_examples is not an integer ({n[:20]!r})") from None
        if self._num_examples < 0:
            raise DatasetError(f"{self.path}: num_examples is {self._num_examples}, expected a count >= 0 "
                               f"(damaged or hand-edited LMDB)")
        self._id_to_idx: dict[str, int] = self._decode(ids, "id_to_idx") if ids is not None else {}
        if not isinstance(self._id_to_idx, dict):
            raise DatasetError(f"{self.path}[id_to_idx]: expected a dict of id -> index, got "
                               f"{type(self._id_to_idx).__name__}")

    def _open(self) -> lmdb.Environment:
        return _shared_env(self.path)  # per process, so DataLoader workers open their own handle

    def _decode(self, raw: bytes, where: str) -> Any:
        try:
            if self.format == "json":
                return json.loads(raw)
            if self.format == "msgpack":
                return msgpack.unpackb(raw, raw=False, strict_map_key=False)
            return pickle.loads(raw)  # noqa: S301 - only reached with allow_pickle=True
        except Exception as err:  # noqa: BLE001 - any decoder failure is a corrupt record
            raise DatasetError(f"{self.path}[{where}]: cannot decode {self.format} ({type(err).__name__})") from None

    def __len__(self) -> int:
        return self._num_examples

    def ids(self) -> list[str]:
        """Item ids in index order (from ``id_to_idx``)."""
        return [k for k, _ in sorted(self._id_to_idx.items(), key=lambda kv: kv[1])]

    def index_of(self, id: str) -> int:
        """Index of the item with id ``id``; raises :class:`DatasetError` when absent."""
        if id not in self._id_to_idx:
            raise DatasetError(f"{self.path}: no item with id {id!r}")
        return int(self._id_to_idx[id])

    def raw_item(self, index: int) -> dict:
        """The decoded item dict with frames rebuilt, before ``transform``."""
        if not -self._num_examples <= index < self._num_examples:
            raise IndexError(f"{self.path}: index {index} out of range for {self._num_examples} items")
        index = index % self._num_examples
        with lmdb_errors(f"{self.path}[{index}]", LMDB_ADVICE), self._open().begin(write=False) as txn:
            blob = txn.get(str(index).encode())
        if blob is None:
            raise DatasetError(f"{self.path}[{index}]: item missing although num_examples={self._num_examples}")
        try:
            raw = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error):
            raise DatasetError(f"{self.path}[{index}]: item is not valid gzip data") from None
        item = self._decode(raw, str(index))
        if not isinstance(item, dict):
            raise DatasetError(f"{self.path}[{index}]: item is a {type(item).__name__}, expected a dict")
        types = item.get("types") if isinstance(item.get("types"), dict) else {}
        for key in list(item):
            if key != "types":
                item[key] = _rebuild(item[key], types.get(key))
        item.setdefault("id", str(index))
        return item

    def __getitem__(self, index: int) -> Any:
        item = self.raw_item(index)
        return self.transform(item) if self.transform is not None else item

    def close(self) -> None:
        """Close the LMDB environment shared by this process's readers of the path (reopened on next access)."""
        key = (str(self.path.resolve()), os.getpid())
        env = _ENVS.pop(key, None)
        if env is not None:
            env.close()


def atom_frames(item: dict) -> dict[str, pd.DataFrame]:
    """The item's atom frames (DataFrames with x, y, z and the other required columns), by key."""
    return {k: v for k, v in item.items()
            if isinstance(v, pd.DataFrame) and set(REQUIRED_COLUMNS) <= set(v.columns)}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def lmdb_summary(path: str | os.PathLike, allow_pickle: bool = False, limit: int | None = None) -> dict:
    """Summarise an ATOM3D LMDB for ``pa-geo inspect``.

    Returns ``{"num_examples": N, "format": fmt, "task": task | None, "items": [{"id", "atoms": {frame key: atom
    count}, "label": label | None}, ...]}`` over the first ``limit`` items (all when None). ``task`` is the task
    detected from the first item (lba, psr, msp, res or None for generic structures); RES items also report
    ``num_labels`` (labelled residues). Raises :class:`DatasetError` for an unreadable LMDB or item.
    """
    ds = Atom3DLMDB(path, allow_pickle=allow_pickle)
    n = len(ds) if limit is None else min(len(ds), int(limit))
    items, task = [], None
    for i in range(n):
        item = ds.raw_item(i)
        kind = detect_task(item)
        task = kind if i == 0 else task
        entry = {"id": str(item.get("id", i)), "atoms": {k: len(v) for k, v in atom_frames(item).items()},
                 "label": _jsonable(item_label(item, kind, str(path)))}
        if kind == "res":
            entry["num_labels"] = int(len(item["labels"]))
        items.append(entry)
    return {"num_examples": len(ds), "format": ds.format, "task": task, "items": items}
