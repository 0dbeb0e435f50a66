"""Stream an ATOM3D split's :class:`TaskRecord`s from its LMDB, one item at a time (never a whole split in memory).

Split layouts accepted: the released split LMDBs ``<root>/<split dir>/data/<split>`` (also
``<root>/splits/<split dir>/data/<split>``, ``<root>/data/<split>``, ``<root>/<split>``), or a raw LMDB
(``<root>/data``, ``<root>/all``, ``<root>/raw/<TASK>/data``) with ``<split dir>/indices/<split>_indices.txt``
(how atom3d's ``split_lmdb_dataset`` writes RES). Items are read by :class:`pa_geo.formats.atom3d.Atom3DLMDB`.
"""
from __future__ import annotations

from collections import deque
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from pa_geo.formats.atom3d import Atom3DLMDB
from pa_geo.formats.atom3d_ppi import ppi_record
from pa_geo.formats.atom3d_res import res_record_builders
from pa_geo.formats.atom3d_tasks import lba_record, msp_record, psr_record
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError

ATOM3D_URL = "https://www.atom3d.ai/"
# task -> (item, where, **options) -> zero-argument builders of that item's records
ItemBuilders = Callable[..., list[Callable[[], TaskRecord]]]


def _one(build: Callable[..., TaskRecord]) -> ItemBuilders:
    def builders(item: dict, where: str, **options) -> list[Callable[[], TaskRecord]]:
        return [partial(build, item, where, **options)]
    return builders


ITEM_BUILDERS: dict[str, ItemBuilders] = {
    "lba": _one(lba_record), "psr": _one(psr_record), "msp": _one(msp_record), "ppi": _one(ppi_record),
    "res": res_record_builders,
}


def find_split(root: Path, split_dir: str, split: str) -> tuple[Path, list[int] | None]:
    """(LMDB dir, item indices or None for all) of ``split``; one-line ``DatasetError`` when nothing is found."""
    for cand in (root / split_dir / "data" / split, root / "splits" / split_dir / "data" / split,
                 root / "data" / split, root / split):
        if (cand / "data.mdb").exists():
            return cand, None
    for idx_dir in (root / split_dir / "indices", root / "splits" / split_dir / "indices", root / "indices", root):
        idx_file = idx_dir / f"{split}_indices.txt"
        if idx_file.is_file():
            for raw in (root / "data", root / "all", root / "raw" / "data", *sorted(root.glob("raw/*/data"))):
                if (raw / "data.mdb").exists():
                    try:
                        return raw, [int(t) for t in idx_file.read_text().split()]
                    except ValueError:
                        raise DatasetError(f"{idx_file}: indices must be integers") from None
    raise DatasetError(f"{root / split_dir / 'data' / split}: ATOM3D split {split!r} not found (expected an LMDB "
                       f"directory with data.mdb; download the {split_dir} archive from {ATOM3D_URL})")


class _RecordIterator(Iterator[TaskRecord]):
    """Resumable: a ``DatasetError`` raised by ``next()`` concerns one record (or one unreadable item); the next
    ``next()`` continues after it. (A generator could not: it is finished once it raises.)"""

    def __init__(self, path: Path, indices: list[int] | None, build: ItemBuilders, options: dict) -> None:
        self._ds = Atom3DLMDB(path)
        self._path = path
        self._indices = range(len(self._ds)) if indices is None else indices
        self._build, self._options = build, options
        self._pos = 0
        self._pending: deque[Callable[[], TaskRecord]] = deque()

    def __next__(self) -> TaskRecord:
        while not self._pending:
            if self._pos >= len(self._indices):
                raise StopIteration
            i = self._indices[self._pos]
            self._pos += 1  # advanced first: a failing item is passed over on the next call
            if not 0 <= i < len(self._ds):
                raise DatasetError(f"{self._path}: split index {i} outside the LMDB's {len(self._ds)} items")
            self._pending.extend(self._build(self._ds[i], f"{self._path}[{i}]", **self._options))
        return self._pending.popleft()()


class Atom3DRecords:
    """The records of one ATOM3D split, read lazily: each ``iter()`` streams them from the LMDB in item order.

    ``task`` in ``lba``, ``psr``, ``msp``, ``ppi`` (one record per item), ``res`` (one per labelled environment);
    ``options`` go to the item builder (``pocket`` for LBA, ``seed`` for PPI). ``next()`` raises
    :class:`DatasetError` naming the file and record for a record that cannot be built, and can be called again
    to go on with the next one.
    """

    def __init__(self, task: str, path: Path, indices: list[int] | None = None, **options) -> None:
        if task not in ITEM_BUILDERS:
            raise DatasetError(f"{path}: unknown ATOM3D task {task!r} ({', '.join(ITEM_BUILDERS)})")
        self.task, self.path, self.indices, self.options = task, Path(path), indices, options
        Atom3DLMDB(self.path)  # fail now, with the path, if it is not a readable ATOM3D LMDB

    @property
    def num_items(self) -> int:
        """LMDB items in the split (records for every task but RES, which has one per labelled residue)."""
        return len(Atom3DLMDB(self.path)) if self.indices is None else len(self.indices)

    def __iter__(self) -> Iterator[TaskRecord]:
        return _RecordIterator(self.path, self.indices, ITEM_BUILDERS[self.task], self.options)


def load_atom3d_task(task: str, split_dir: str, root: str | Path, split: str, **options) -> Atom3DRecords:
    """The records of ``split`` of ATOM3D ``task`` (lba, psr, msp, ppi, res) under ``root``, streamed lazily."""
    path, indices = find_split(Path(root), split_dir, split)
    return Atom3DRecords(task, path, indices, **options)
