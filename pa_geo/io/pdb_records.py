"""PDB record checks that biotite does not make, each refusal naming its line (1-based).

biotite's ``PDBFile`` takes every ATOM/HETATM line between one ``MODEL`` line and the next as a model and parses
fixed columns with ``float()`` / hybrid-36. So a ``MODEL`` record in the middle of the atoms silently drops every
atom before it, ``ENDMDL`` means nothing, and ``3.0e38`` in a coordinate column is read as a coordinate. Here:

* ``MODEL`` while a model is open (no ``ENDMDL`` since the last ``MODEL``), or after atom records that belong to no
  model, is refused; so are atom records outside ``MODEL``/``ENDMDL`` in a file that has models, and an ``ENDMDL``
  without its ``MODEL``. (A file without ``MODEL`` records is one model; a lone ``ENDMDL`` there is ignored, as is
  a missing ``ENDMDL`` at the end of the file.)
* coordinates (columns 31-54, ``%8.3f``) must be numbers inside what those columns can hold, -999.999..9999.999
  (NaN is let through: the reader drops such atoms and says so); residue numbers (23-26) decimal or hybrid-36;
  occupancy and B-factor (55-66) numbers, because biotite parses them.
"""
from __future__ import annotations

import math
import re

from pa_geo.errors import StructureError

PDB_COORD_MIN, PDB_COORD_MAX = -999.999, 9999.999  # what %8.3f in 8 columns can hold
_RESNUM = re.compile(r"-?\d{1,4}|[A-Za-z][0-9A-Za-z]{3}")  # decimal, or hybrid-36 above 9999
_COLUMNS = (("x coordinate", 30, 38), ("y coordinate", 38, 46), ("z coordinate", 46, 54),
            ("occupancy", 54, 60), ("B-factor", 60, 66))


def _check_atom_line(source: str, n: int, line: str) -> None:
    """Refuse one ATOM/HETATM line (``n`` 1-based) whose numeric columns biotite would misread."""
    padded = line.ljust(80)
    resnum = padded[22:26].strip()
    if not _RESNUM.fullmatch(resnum):
        raise StructureError(source, f"malformed PDB file: line {n}: residue number {resnum!r} (columns 23-26) is "
                                     f"not a number")
    for name, a, b in _COLUMNS:
        text = padded[a:b]
        try:
            value = float(text)
        except ValueError:
            raise StructureError(source, f"malformed PDB file: line {n}: {name} {text.strip()!r} (columns "
                                         f"{a + 1}-{b}) is not a number") from None
        if a < 54 and math.isfinite(value) and not PDB_COORD_MIN <= value <= PDB_COORD_MAX:
            raise StructureError(source, f"line {n}: {name} {text.strip()} is outside what PDB columns hold "
                                         f"({PDB_COORD_MIN}..{PDB_COORD_MAX})")


def pdb_model_lines(source: str, lines: list[str]) -> list[list[int]]:
    """Check every ATOM/HETATM record and the MODEL/ENDMDL nesting of a PDB file's ``lines``.

    Returns, per model (one for a file without ``MODEL`` records), the 0-based line indices of its ATOM/HETATM
    records in file order: exactly the records biotite reads for that model once these checks pass. Raises
    :class:`StructureError` naming the line for every problem listed in the module docstring.
    """
    has_models = any(line.startswith("MODEL") for line in lines)
    models: list[list[int]] = []
    open_at: int | None = None  # line index of the MODEL record of the open model
    closed_at: int | None = None  # line index of the last ENDMDL
    loose: int | None = None  # first atom record outside any model

    def outside(at: int) -> StructureError:
        if closed_at is None:  # atoms, then the first MODEL record (at line ``at``)
            return StructureError(source, f"line {at + 1}: MODEL record after atom records that belong to no model "
                                          f"(from line {loose + 1}): a stray MODEL record, or a missing MODEL "
                                          f"before line {loose + 1}")
        return StructureError(source, f"line {loose + 1}: atom record outside any model, after the ENDMDL at line "
                                      f"{closed_at + 1} (a stray ENDMDL, or a missing MODEL record)")

    for i, line in enumerate(lines):
        if line.startswith(("ATOM", "HETATM")):
            _check_atom_line(source, i + 1, line)
            if open_at is not None:
                models[-1].append(i)
            elif has_models:
                loose = i if loose is None else loose
            else:
                if not models:
                    models.append([])
                models[0].append(i)
        elif line.startswith("MODEL"):
            if open_at is not None:
                raise StructureError(source, f"line {i + 1}: MODEL record inside the model opened at line "
                                             f"{open_at + 1} (no ENDMDL closes it): a truncated or concatenated "
                                             f"file? add the ENDMDL or remove the stray MODEL")
            if loose is not None:
                raise outside(i)
            open_at = i
            models.append([])
        elif line.startswith("ENDMDL") and has_models:
            if open_at is None:
                if loose is not None and closed_at is not None:
                    raise outside(i)
                raise StructureError(source, f"line {i + 1}: ENDMDL without a MODEL record before it")
            open_at, closed_at = None, i
    if loose is not None:
        raise outside(len(lines))
    return models
