"""Protein solubility (solvnet's measured labels): a sequence-only, graph-level binary task.

CSV columns (header required, any order, extra columns ignored): ``name`` (the record id), ``label`` (1 soluble,
0 insoluble), ``aa_seq`` (one-letter sequence); the shipped file also has ``detail`` (the source record).
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pa_geo.demo.data import SOLUBILITY_PATH
from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein

REQUIRED_COLUMNS = ("name", "label", "aa_seq")
_SEQUENCE = re.compile(r"^[A-Z]+$")


@dataclass
class SolubilityRecord:
    """One sequence-only protein (``protein.has_structure`` is False) and its label (1 soluble, 0 insoluble)."""

    protein: Protein
    label: int


def load_solubility(path: str | os.PathLike = SOLUBILITY_PATH) -> list[SolubilityRecord]:
    """Read the solubility CSV (default: the shipped ``data/solubility.csv``, 3,230 sequences) in file order.

    Sequences are upper-cased; letters outside the 20 standard ones (e.g. ``X``) are kept as given.
    Raises:
        DatasetError: ``"<file>:<line>: <reason>"`` for a missing file, a missing column, an empty name, a label
        other than 0/1, an empty or non-alphabetic sequence, a duplicate name or a row with too few fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: solubility CSV not found")
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    records: list[SolubilityRecord] = []
    seen: dict[str, int] = {}
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: empty file (expected a header with {', '.join(REQUIRED_COLUMNS)})")
            header = [h.strip() for h in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            col = {c: header.index(c) for c in REQUIRED_COLUMNS}
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                records.append(_parse_row(path, line, row, col, seen))
        except (csv.Error, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    if not records:
        raise DatasetError(f"{path}: no records")
    return records


def _parse_row(path: Path, line: int, row: list[str], col: dict[str, int],
               seen: dict[str, int]) -> SolubilityRecord:
    if len(row) <= max(col.values()):
        raise DatasetError(f"{path}:{line}: {len(row)} field(s), expected at least {max(col.values()) + 1}")
    name, label, seq = row[col["name"]].strip(), row[col["label"]].strip(), row[col["aa_seq"]].strip().upper()
    if not name:
        raise DatasetError(f"{path}:{line}: empty name")
    if name in seen:
        raise DatasetError(f"{path}:{line}: duplicate name {name!r} (first on line {seen[name]})")
    if label not in ("0", "1"):
        raise DatasetError(f"{path}:{line}: record {name!r}: label {label!r} is not 0 or 1")
    if not _SEQUENCE.match(seq):
        bad = sorted(set(seq) - set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) if seq else []
        reason = "empty sequence" if not seq else f"invalid sequence characters {bad}"
        raise DatasetError(f"{path}:{line}: record {name!r}: {reason}")
    seen[name] = line
    return SolubilityRecord(Protein.from_sequence(name, seq, source=f"{path}:{line}"), int(label))
