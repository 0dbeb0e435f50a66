"""The protein columns of a table row -> :class:`~pa_geo.io.protein.Protein` objects.

Columns per protein (no suffix for one protein per row; ``_a`` and ``_b`` for pairs):

* ``structure``: a PDB / mmCIF file (plain or ``.gz``), relative to the table's folder (or absolute). A chain
  selection is the ``chain`` column (``A``, or ``A,B`` for several chains, kept in file order) or a
  ``path:CHAIN`` suffix. Without one every protein chain of the file is read.
* ``sequence``: one-letter sequence; required when the row has no structure. With a structure it must equal the
  structure's residues (a check that labels line up with what the model sees).

Either the table has structures (every row names one) or it has none: a table mixing both would give a
structure encoder inputs it cannot embed.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from pa_geo.errors import DatasetError, PaGeoError
from pa_geo.io.protein import Protein
from pa_geo.io.structure import read_structure

PAIR_SUFFIXES: tuple[str, str] = ("_a", "_b")
_SEQUENCE = re.compile(r"^[A-Z]+$")
_CHAIN_SUFFIX = re.compile(r"^(?P<path>.+?):(?P<chains>[A-Za-z0-9]{1,4}(,[A-Za-z0-9]{1,4})*)$")


class RowError(ValueError):
    """A row's proteins cannot be read (the caller names the table, row and id)."""


def protein_suffixes(level: str) -> tuple[str, ...]:
    """``("",)`` for single-protein tables, ``("_a", "_b")`` for pair tables."""
    return PAIR_SUFFIXES if level == "pair" else ("",)


def check_protein_columns(path: Path, columns: list[str], level: str) -> bool:
    """Check the table has ``structure`` and/or ``sequence`` columns (per suffix); returns whether it has
    structure columns. One-line :class:`DatasetError` naming the missing columns otherwise."""
    has_structure = []
    for sfx in protein_suffixes(level):
        if f"structure{sfx}" not in columns and f"sequence{sfx}" not in columns:
            what = "a protein pair needs" if sfx else "a table needs"
            raise DatasetError(f"{path}: {what} a structure{sfx} or sequence{sfx} column; columns: "
                               f"{', '.join(columns)}")
        has_structure.append(f"structure{sfx}" in columns)
    if len(set(has_structure)) > 1:
        raise DatasetError(f"{path}: give structure_a and structure_b, or neither")
    return has_structure[0]


def split_chain_suffix(cell: str, base: Path) -> tuple[Path, list[str] | None]:
    """``"x.pdb:A"`` -> ``(base/x.pdb, ["A"])``; a name containing ``:`` that exists as written is kept whole."""
    path = Path(cell)
    path = path if path.is_absolute() else base / path
    m = _CHAIN_SUFFIX.match(cell)
    if m is None or path.exists():
        return path, None
    inner = Path(m["path"])
    return (inner if inner.is_absolute() else base / inner), m["chains"].split(",")


def clean_sequence(text: str) -> str:
    """Upper-cased, whitespace removed, one trailing ``*`` dropped; :class:`RowError` for other characters."""
    seq = "".join(text.split()).upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise RowError("empty sequence")
    if not _SEQUENCE.match(seq):
        bad = sorted({c for c in seq if not "A" <= c <= "Z"})
        raise RowError(f"sequence has characters outside A-Z: {bad}")
    return seq


def row_protein(cells: dict[str, str], base: Path, suffix: str, protein_id: str, structures: bool,
                source: str = "") -> Protein:
    """The protein of one row (columns with ``suffix``), named ``protein_id``.

    ``structures`` says whether the table has structures (then this row must name one); ``source`` is recorded as
    a sequence-only protein's origin (the table). Raises :class:`RowError` with the reason (the structure reader's
    message names the file).
    """
    structure = cells.get(f"structure{suffix}", "").strip()
    sequence = cells.get(f"sequence{suffix}", "").strip()
    chain_cell = cells.get(f"chain{suffix}", "").strip()
    if structures and not structure:
        raise RowError(f"no structure{suffix} file (the table's structure column must be filled in every row)")
    if not structure:
        if not sequence:
            raise RowError(f"neither structure{suffix} nor sequence{suffix} given")
        return Protein.from_sequence(protein_id, clean_sequence(sequence), source=source)
    path, chains = split_chain_suffix(structure, base)
    if chain_cell:
        chains = [c.strip() for c in chain_cell.split(",") if c.strip()]
    try:
        protein = read_structure(path, chains=chains)
    except PaGeoError as err:
        raise RowError(str(err)) from None
    if sequence:
        want = clean_sequence(sequence)
        if want != protein.sequence:
            raise RowError(f"sequence{suffix} ({len(want)} residues) differs from the structure's residues "
                           f"({len(protein)}) at position {_first_difference(want, protein.sequence) + 1}")
    return dataclasses.replace(protein, id=protein_id)


def _first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
