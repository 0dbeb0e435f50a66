"""mmCIF ``_atom_site`` checks that biotite does not make, and where each atom row was written.

biotite selects model ``m`` as the rows from the first row of the m-th model number to the first row of the next
one, so rows of a model that reappear after another model's rows would silently join the wrong model; here that
is refused with the row's line. When biotite cannot read the loop at all, :func:`locate_row_problem` finds the
line to name.
"""
from __future__ import annotations

import shlex

import numpy as np

from pa_geo.errors import StructureError


def atom_site_lines(text: str, n_rows: int) -> np.ndarray | None:
    """1-based line number of every ``_atom_site`` loop row, or None when rows do not sit one per line (then
    errors name the row instead). ``n_rows`` is the loop's row count as biotite parsed it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("_atom_site.") and i and lines[i - 1].strip() == "loop_":
            j = i
            while j < len(lines) and lines[j].startswith("_atom_site."):
                j += 1
            rows = []
            while j < len(lines) and not lines[j].startswith(("#", "loop_", "_", "data_")):
                if lines[j].strip():
                    rows.append(j + 1)
                j += 1
            return np.asarray(rows, np.int64) if len(rows) == n_rows else None
    return None


def model_rows(source: str, model_numbers: np.ndarray, model: int, lines: np.ndarray | None) -> np.ndarray:
    """0-based ``_atom_site`` rows of the ``model``-th model (1-based, in order of first appearance, as biotite
    counts), after checking that every model's rows are contiguous."""
    nums = np.asarray(model_numbers)
    block_starts = np.flatnonzero(np.r_[True, nums[1:] != nums[:-1]])
    block_models = nums[block_starts]
    _, first = np.unique(block_models, return_index=True)
    if len(first) != len(block_models):
        again = int(block_starts[np.setdiff1d(np.arange(len(block_models)), first)[0]])
        where = f"line {lines[again]}" if lines is not None else f"_atom_site row {again + 1}"
        raise StructureError(source, f"{where}: atom rows of model {nums[again]} resume after another model's "
                                     f"rows (each model's rows must be contiguous)")
    stops = np.r_[block_starts[1:], len(nums)]
    return np.arange(block_starts[model - 1], stops[model - 1])


_COORDINATES = ("Cartn_x", "Cartn_y", "Cartn_z", "occupancy", "B_iso_or_equiv")


def locate_row_problem(text: str) -> str | None:
    """``"line N: ..."`` for the first ``_atom_site`` row that has the wrong number of values or a coordinate that
    is not a number (``?`` / ``.`` allowed), or None when every row looks right (the problem is elsewhere)."""
    lines = text.splitlines()
    columns: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("_atom_site.") and (columns or lines[i - 1].strip() == "loop_"):
            columns.append(line.split()[0][len("_atom_site."):])
            continue
        if not columns:
            continue
        if not line.strip():
            continue
        if line.startswith(("#", "loop_", "_", "data_")):
            return None
        try:
            values = shlex.split(line, posix=True)
        except ValueError:
            return f"line {i + 1}: unbalanced quotes in an _atom_site row"
        if len(values) != len(columns):
            return f"line {i + 1}: _atom_site row has {len(values)} values, the loop has {len(columns)} columns"
        for name in _COORDINATES:
            if name in columns and values[columns.index(name)] not in ("?", "."):
                try:
                    float(values[columns.index(name)])
                except ValueError:
                    return f"line {i + 1}: {name} {values[columns.index(name)]!r} is not a number"
    return None
