"""Read a CSV / TSV / Parquet table into rows of text cells that remember where they came from.

CSV and TSV (optionally gzipped) are read with Python's ``csv`` module, so a row knows its exact line number in
the file (blank lines skipped, quoted fields kept whole); Parquet rows are numbered from 1 (header not counted).
Every cell becomes stripped text: a missing value is ``""``, a float that is an integer is written without
``.0`` (Parquet writes integer columns with gaps as floats), a list cell (Parquet) is joined with ``;``.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pa_geo.errors import DatasetError


@dataclass
class TableRow:
    """One data row: ``number`` (line number for CSV / TSV, 1-based row number for Parquet) and its cells by
    column name (``""`` for an empty cell). ``problem`` is set when the row itself is malformed (wrong field
    count)."""

    number: int
    cells: dict[str, str]
    problem: str = ""


@dataclass
class RawTable:
    """A table's columns (stripped header names, in file order) and rows; ``unit`` is ``"line"`` or ``"row"``."""

    path: Path
    columns: list[str]
    rows: list[TableRow]
    unit: str = "line"

    def where(self, row: TableRow, record_id: str | None = None) -> str:
        """``"<table> line 7 (id abc)"``: how error messages name a row."""
        rid = f" (id {record_id})" if record_id else ""
        return f"{self.path} {self.unit} {row.number}{rid}"


def cell_text(value: Any) -> str:
    """A Parquet / Python value as stripped text (``None`` / NaN -> ``""`` unless a label cell keeps ``nan``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join("nan" if v is None or (isinstance(v, float) and math.isnan(v)) else cell_text(v)
                        for v in value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def read_raw_table(path: str | Path) -> RawTable:
    """Read ``path`` (``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``, ``.parquet``, ``.pq``) into a :class:`RawTable`.

    Raises:
        DatasetError: one line naming the file: missing / unreadable file, empty table, no header, a repeated or
        empty column name, malformed CSV quoting or a Parquet file pyarrow cannot read.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: table not found" if not path.exists() else f"{path}: is not a file")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        table = _read_parquet(path)
    else:
        table = _read_delimited(path, "\t" if name.endswith((".tsv", ".tsv.gz")) else ",")
    if not table.rows:
        raise DatasetError(f"{path}: the table has a header but no rows")
    return table


def _check_header(path: Path, header: list[str]) -> list[str]:
    columns = [h.strip().lstrip("\ufeff") for h in header]
    if any(not c for c in columns):
        raise DatasetError(f"{path}: the header has an empty column name (column {columns.index('') + 1})")
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise DatasetError(f"{path}: column {c!r} appears twice in the header")
        seen.add(c)
    return columns


def _read_delimited(path: Path, delimiter: str) -> RawTable:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[TableRow] = []
    try:
        header = next((r for r in reader if any(c.strip() for c in r)), None)
        if header is None:
            raise DatasetError(f"{path}: empty table (no header)")
        columns = _check_header(path, header)
        for fields in reader:
            if not any(c.strip() for c in fields):
                continue
            problem = "" if len(fields) == len(columns) else \
                f"{len(fields)} fields, the header has {len(columns)}"
            cells = {c: (fields[i].strip() if i < len(fields) else "") for i, c in enumerate(columns)}
            rows.append(TableRow(reader.line_num, cells, problem))
    except csv.Error as err:
        raise DatasetError(f"{path} line {reader.line_num}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} "
                           f"({err})") from None
    return RawTable(path, columns, rows, "line")


def _read_parquet(path: Path) -> RawTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DatasetError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
        names = list(table.schema.names)
        columns = _check_header(path, names)
        data = table.to_pylist()
    except DatasetError:
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise DatasetError(f"{path}: not a readable Parquet file ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]})") from None
    rows = [TableRow(i + 1, {c: cell_text(r.get(n)) for c, n in zip(columns, names)}) for i, r in enumerate(data)]
    return RawTable(path, columns, rows, "row")
