"""The TAPE / PEER LMDB format: ``b'num_examples'`` -> pickled int, ``b'0'`` .. ``b'N-1'`` -> pickled record dicts.

This is the layout that TAPE's ``LMDBDataset`` and TorchDrug's ``ProteinDataset.load_lmdbs`` read (one LMDB
environment directory per split, e.g. ``fluorescence/fluorescence_train.lmdb``). Records are unpickled with the
restricted :mod:`pa_geo.formats.safe_pickle`; nothing in a downloaded file can execute code.
"""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any, Iterable

import lmdb

from pa_geo.formats.safe_pickle import safe_loads
from pa_geo.errors import DatasetError
from pa_geo.io.lmdb_env import LmdbAdvice, lmdb_errors, open_env

NUM_EXAMPLES_KEY = b"num_examples"
LMDB_ADVICE = LmdbAdvice("TAPE/PEER LMDB", DatasetError,
                         damaged="extract the dataset archive again")


def read_tape_lmdb(path: str | Path, required_fields: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read every record of one TAPE/PEER LMDB environment, in index order.

    ``path`` is the ``*.lmdb`` directory (or a single-file LMDB). Each record must be a dict holding every name in
    ``required_fields``; otherwise, or for a missing file / count / record, a one-line ``DatasetError`` is raised.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: LMDB not found")
    required = tuple(required_fields)
    env = open_env(path, LMDB_ADVICE, readonly=True, deep=True, readahead=False, meminit=False, max_readers=1)
    try:
        with lmdb_errors(path, LMDB_ADVICE), env.begin(write=False) as txn:
            raw_count = txn.get(NUM_EXAMPLES_KEY)
            if raw_count is None:
                raise DatasetError(f"{path}: no 'num_examples' key (not a TAPE/PEER LMDB)")
            count = safe_loads(raw_count, f"{path}[num_examples]")
            if not isinstance(count, int) or count < 0:
                raise DatasetError(f"{path}[num_examples]: expected a non-negative int, got {count!r}")
            records = []
            for i in range(count):
                source = f"{path}[{i}]"
                with lmdb_errors(source, LMDB_ADVICE):
                    raw = txn.get(str(i).encode())
                if raw is None:
                    raise DatasetError(f"{source}: record missing (num_examples says {count})")
                item = safe_loads(raw, source)
                if not isinstance(item, dict):
                    raise DatasetError(f"{source}: expected a dict record, got {type(item).__name__}")
                missing = [f for f in required if f not in item]
                if missing:
                    raise DatasetError(f"{source}: record lacks field(s) {', '.join(missing)}; "
                                       f"has {', '.join(sorted(map(str, item)))}")
                records.append(item)
    finally:
        env.close()
    return records


def write_tape_lmdb(path: str | Path, records: list[dict[str, Any]], protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    """Write ``records`` as a TAPE/PEER LMDB directory at ``path`` (same keys and pickling as the releases).

    Written atomically: into ``<path>.tmp`` inside one transaction, then renamed over ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    size = sum(len(pickle.dumps(r, protocol=protocol)) for r in records)
    env = lmdb.open(str(tmp), map_size=max(1 << 20, 4 * size + (1 << 16)))
    try:
        with env.begin(write=True) as txn:
            for i, record in enumerate(records):
                txn.put(str(i).encode(), pickle.dumps(record, protocol=protocol))
            txn.put(NUM_EXAMPLES_KEY, pickle.dumps(len(records), protocol=protocol))
    finally:
        env.close()
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
