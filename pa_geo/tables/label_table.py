"""A label table as a task's data: its rows per split, the class names, and the records of each split.

Row rules (the table: :mod:`pa_geo.tables`): ``id`` unique and non-empty; ``split`` (when present) one of
``train`` / ``valid`` / ``test`` (``training``, ``val``, ``validation``, ``testing`` accepted); labels as
:mod:`~pa_geo.tables.labels` describes; proteins as :mod:`~pa_geo.tables.proteins` describes.
A bad row is a one-line :class:`DatasetError` naming the table, the row (line number and id) and the reason. With
``skip_bad`` it is skipped and counted instead: rows that fail the checks made when the table is opened are listed
in :attr:`LabelTable.skipped`; rows whose files fail later are *yielded* as errors by :meth:`LabelTable.records`
(the example-store build counts and logs those).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Iterator

from pa_geo.datasets.records import TaskRecord
from pa_geo.datasets.splits import SPLIT_NAMES
from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein
from pa_geo.tables.frame import RawTable, TableRow, read_raw_table
from pa_geo.tables.labels import LabelCodec, LabelError
from pa_geo.tables.proteins import (RowError, check_protein_columns, protein_suffixes, row_protein,
                                    split_chain_suffix)
from pa_geo.tables.settings import TableSettings
from pa_geo.tables.similarity_split import SplitParams, split_file_for, table_split

LOG = logging.getLogger(__name__)
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "val": "valid", "validation": "valid",
                 "dev": "valid", "test": "test", "testing": "test"}


@dataclass
class TableEntry:
    """A row that passed the checks made when the table is opened: its id, split and row."""

    id: str
    split: str
    row: TableRow


class LabelTable:
    """The rows of a label table by split, its label codec (class names) and its records.

    Opening the table reads every row (text only), checks ids, splits and label columns, makes or reads the
    similarity split when there is no ``split`` column (this parses each structure once, for its sequence), and
    fixes the class names from the training split. Structures are read again, lazily, by :meth:`records`.

    Args:
        settings: :class:`~pa_geo.tables.settings.TableSettings` (the ``data.*`` options).
        labels: False to open a table of proteins only (``pa-geo predict --input table.csv``): no label columns,
            no split, no codec; :meth:`proteins` still works.
    """

    def __init__(self, settings: TableSettings, labels: bool = True) -> None:
        self.settings = settings
        self.raw: RawTable = read_raw_table(settings.path)
        self.base = settings.path.parent
        self.skipped: list[str] = []
        self.excluded: dict[str, str] = {}
        self.has_structures = check_protein_columns(settings.path, self.raw.columns, settings.level)
        if labels:
            missing = [c for c in settings.label_columns if c not in self.raw.columns]
            if missing:
                raise DatasetError(f"{settings.path}: label column(s) {', '.join(missing)} not found; columns: "
                                   f"{', '.join(self.raw.columns)} (set data.table.label_columns)")
        if "id" not in self.raw.columns:
            raise DatasetError(f"{settings.path}: no id column; columns: {', '.join(self.raw.columns)}")
        self.entries = self._check_rows(split_column=labels and "split" in self.raw.columns)
        if labels and "split" not in self.raw.columns:
            self._similarity_split()
        self.codec = LabelCodec.fit(settings, (e.row.cells for e in self.entries if e.split == "train")) \
            if labels else None
        if labels:
            self._check_split_sizes()

    # ---- opening --------------------------------------------------------------------------------------------
    def bad_row(self, row: TableRow, record_id: str | None, reason: str) -> DatasetError:
        """The one-line error of a bad row."""
        return DatasetError(f"{self.raw.where(row, record_id)}: {reason}")

    def _reject(self, row: TableRow, record_id: str | None, reason: str) -> None:
        err = self.bad_row(row, record_id, reason)
        if not self.settings.skip_bad:
            raise err
        self.skipped.append(str(err))

    def _check_rows(self, split_column: bool) -> list[TableEntry]:
        entries: list[TableEntry] = []
        first_line: dict[str, int] = {}
        for row in self.raw.rows:
            rid = row.cells.get("id", "").strip()
            if row.problem:
                self._reject(row, rid or None, row.problem)
            elif not rid:
                self._reject(row, None, "empty id")
            elif rid in first_line:
                self._reject(row, rid, f"duplicate id (first on {self.raw.unit} {first_line[rid]})")
            else:
                first_line[rid] = row.number
                split = ""
                if split_column:
                    value = row.cells.get("split", "").strip()
                    split = SPLIT_ALIASES.get(value.lower(), "")
                    if not split:
                        self._reject(row, rid, f"split {value!r} is not one of train, valid, test")
                        continue
                entries.append(TableEntry(rid, split, row))
        if self.skipped:
            LOG.warning("skipped %d bad row(s) of %s; first: %s", len(self.skipped), self.settings.path,
                        self.skipped[0])
        return entries

    def _similarity_split(self) -> None:
        s = self.settings
        params = SplitParams(s.split_method, s.split_identity, s.split_coverage, s.split_fractions, s.split_seed)
        assignment = table_split(s.path, [e.id for e in self.entries], self._split_sequences, params)
        for e in self.entries:
            e.split = assignment[e.id]

    def _split_sequences(self) -> list[tuple[str | None, ...]]:
        out = []
        for e in self.entries:
            try:
                out.append(tuple(p.sequence for p in self.row_proteins(e)))
            except DatasetError as err:
                if not self.settings.skip_bad:
                    raise
                LOG.warning("no sequence for the split: %s", err)
                out.append((None,))
        return out

    def _check_split_sizes(self) -> None:
        counts = self.split_counts()
        for split in ("train", "valid"):
            if counts[split] == 0:
                raise DatasetError(f"{self.settings.path}: no {split} rows ({len(self.entries)} usable rows; "
                                   f"split {counts}); add rows, a split column, or change data.table.split_fractions")
        if counts["test"] == 0:
            LOG.warning("%s: the test split is empty", self.settings.path)

    # ---- reading --------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """16-hex hash of (path, size, mtime) of the table, its split file and every structure file it names:
        what a build from this table depends on (part of the example-store key)."""
        paths = [self.settings.path, split_file_for(self.settings.path)]
        for e in self.entries:
            for sfx in protein_suffixes(self.settings.level):
                cell = e.row.cells.get(f"structure{sfx}", "").strip()
                if cell:
                    paths.append(split_chain_suffix(cell, self.base)[0])
        h = hashlib.sha256()
        for path in dict.fromkeys(paths):
            try:
                st = path.stat()
                h.update(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{path}\0missing\n".encode())
        return h.hexdigest()[:16]

    def split_counts(self) -> dict[str, int]:
        """Rows per split (after the checks made when the table was opened)."""
        return {name: sum(e.split == name for e in self.entries) for name in SPLIT_NAMES}

    def ids(self, split: str | None = None) -> list[str]:
        """Row ids of ``split`` (all rows when None), in file order."""
        return [e.id for e in self.entries if split is None or e.split == split]

    def exclude(self, reasons: dict[str, str]) -> None:
        """From now on, rows with a protein whose id is in ``reasons`` are bad rows with that reason (proteins a
        backbone refused to embed)."""
        self.excluded.update(reasons)

    def row_proteins(self, entry: TableEntry) -> list[Protein]:
        """The proteins of one row (one, or A and B for pairs); :class:`DatasetError` naming the row otherwise."""
        suffixes = protein_suffixes(self.settings.level)
        out = []
        for sfx in suffixes:
            pid = entry.row.cells.get(f"id{sfx}", "").strip() or (f"{entry.id}{sfx}" if sfx else entry.id)
            if pid in self.excluded:
                raise self.bad_row(entry.row, entry.id, self.excluded[pid])
            try:
                out.append(row_protein(entry.row.cells, self.base, sfx, pid, self.has_structures,
                                       source=str(self.settings.path)))
            except RowError as err:
                raise self.bad_row(entry.row, entry.id, str(err)) from None
        return out

    def record(self, entry: TableEntry) -> TaskRecord:
        """The :class:`TaskRecord` of one row: proteins, label, label mask (residue level), ``extra["line"]``."""
        if self.codec is None:
            raise DatasetError(f"{self.settings.path}: opened without labels")
        proteins = self.row_proteins(entry)
        try:
            label, mask = self.codec.encode(entry.row.cells, len(proteins[0]) if self.settings.level == "residue"
                                            else None)
        except LabelError as err:
            raise self.bad_row(entry.row, entry.id, str(err)) from None
        return TaskRecord(entry.id, proteins, label, label_mask=mask, extra={"row": entry.row.number})

    def records(self, split: str) -> Iterator[TaskRecord | DatasetError]:
        """The records of ``split`` in file order. A bad row raises its :class:`DatasetError`, or with
        ``skip_bad`` is yielded as that error (the caller counts and logs it)."""
        for e in self.entries:
            if e.split != split:
                continue
            try:
                yield self.record(e)
            except DatasetError as err:
                if not self.settings.skip_bad:
                    raise
                yield err

    def proteins(self, split: str | None = None) -> Iterator[Protein | DatasetError]:
        """Every protein of ``split`` (all splits when None), as :meth:`records` yields them (errors likewise)."""
        for e in self.entries:
            if split is not None and e.split != split:
                continue
            try:
                yield from self.row_proteins(e)
            except DatasetError as err:
                if not self.settings.skip_bad:
                    raise
                yield err
