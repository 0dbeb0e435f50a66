"""``pa-geo predict --input``: structure files, FASTA files or a table -> records to predict (no labels).

Ids: a structure file's name without its extensions (``7xyz_A.pdb.gz`` -> ``7xyz_A``); a FASTA record's first
header word; a table row's ``id`` column. Directories give their structure and FASTA files (recursively, sorted).
An input that cannot be read, or an id seen before, is one line in the returned ``bad`` list; the rest is
predicted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pa_geo.cache.embed_cli import FASTA_SUFFIXES, expand_inputs
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError, PaGeoError
from pa_geo.io.fasta import read_fasta
from pa_geo.io.protein import Protein
from pa_geo.io.structure import read_structure
from pa_geo.tables.label_table import LabelTable
from pa_geo.tables.settings import TABLE_SUFFIXES, TableSettings


def is_table(path: str | Path) -> bool:
    """Whether ``path`` is named like a label table (``.csv``, ``.tsv``, ``.parquet``, ...)."""
    return Path(path).name.lower().endswith(TABLE_SUFFIXES)


def _table_records(path: Path, level: str) -> tuple[list[TaskRecord], list[str]]:
    table = LabelTable(TableSettings(path, level=level, skip_bad=True), labels=False)  # type: ignore[arg-type]
    records, bad = [], list(table.skipped)
    for entry in table.entries:
        try:
            records.append(TaskRecord(entry.id, table.row_proteins(entry), None, extra={"row": entry.row.number}))
        except PaGeoError as err:
            bad.append(str(err))
    return records, bad


def read_predict_inputs(inputs: Sequence[str | Path], level: str = "protein") -> tuple[list[TaskRecord], list[str]]:
    """``(records, bad)``: one :class:`TaskRecord` (``label`` None) per protein or table row, in input order, and
    one line per input that could not be read or whose id repeats an earlier one.

    ``level`` is the model's (``protein`` / ``residue`` / ``pair``); a pair model reads tables only (columns
    ``structure_a`` / ``sequence_a`` ... as in training). Raises :class:`ConfigError` when nothing was given.
    """
    if not inputs:
        raise ConfigError("pa-geo predict needs --input: structure files, FASTA files, a table or a directory")
    records: list[TaskRecord] = []
    bad: list[str] = []
    for raw in inputs:
        path = Path(raw)
        if is_table(path):
            try:
                got, errors = _table_records(path, level)
            except PaGeoError as err:
                bad.append(str(err))
                continue
            records.extend(got)
            bad.extend(errors)
            continue
        if level == "pair":
            bad.append(f"{path}: a protein-pair model predicts from a table with structure_a / structure_b (or "
                       f"sequence_a / sequence_b) columns")
            continue
        for file in expand_inputs([str(path)]) if path.is_dir() else [path]:
            try:
                proteins: list[Protein] = read_fasta(file) if file.name.lower().endswith(FASTA_SUFFIXES) \
                    else [read_structure(file)]
            except PaGeoError as err:
                bad.append(str(err))
                continue
            records.extend(TaskRecord(p.id, [p], None) for p in proteins)
    return _unique(records, bad), bad


def _unique(records: list[TaskRecord], bad: list[str]) -> list[TaskRecord]:
    first: dict[str, str] = {}
    out = []
    for rec in records:
        origin = rec.proteins[0].source or "input"
        if rec.id in first:
            bad.append(f"{origin}: id {rec.id!r} repeats an earlier input ({first[rec.id]}); rename one of them")
            continue
        first[rec.id] = origin
        out.append(rec)
    return out
