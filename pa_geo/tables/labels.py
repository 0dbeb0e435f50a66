"""Label cells of a table -> the label arrays a :class:`~pa_geo.datasets.records.TaskRecord` carries.

Written forms (``T`` label columns, ``L`` residues, ``C`` classes):

=========  ==============  =========================================================  ==========================
level      type            cell                                                       record label
=========  ==============  =========================================================  ==========================
protein,   regression      a number per label column                                  float, or float32 ``[T]``
pair       binary          one of the 2 class names (``0``/``1``, ``no``/``yes`` ...)  0.0 / 1.0 (index of name)
           multiclass      a class name                                               int class index
           multilabel      one column: ``;``-separated class names (may be empty);    float32 ``[C]`` 0/1
                           several columns: one 0/1 (true/false) per column
residue    regression      ``;``-separated numbers, one per residue (``nan`` = not    float32 ``[L]`` + mask
                           scored)
           binary,         one symbol per residue (``HHHEEC..``; a mask symbol, ``.``  int64 ``[L]`` (multiclass)
           multiclass      by default, is not scored) or ``;``-separated class names  or float32 0/1 ``[L]``;
                                                                                      mask ``[L]`` bool
=========  ==============  =========================================================  ==========================

Class names, unless given, are every value seen in the training split, **sorted**: numerically when every name is
a number (``0 < 1 < 2``, ``2 < 10``), otherwise by code point (``C < E < H``; ``false < true``, ``no < yes``). For
binary tasks the second name is the positive class. Give ``data.table.class_names`` to choose the order.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from pa_geo.tables.settings import TableSettings
from pa_geo.errors import ConfigError

NOT_SCORED = frozenset({"nan", "na", "n/a", ""})
_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "0.0", "false", "no", "n", "f"})


class LabelError(ValueError):
    """A label cell that does not fit the task (the caller adds the table, row and id)."""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sort_class_names(names: Iterable[str]) -> list[str]:
    """Distinct names, numerically sorted when all are numbers, else by code point (the documented order)."""
    names = sorted(set(names))
    values = [_number(n) for n in names]
    if names and all(v is not None and math.isfinite(v) for v in values):
        return [n for _, n in sorted(zip(values, names))]
    return names


def residue_tokens(cell: str) -> list[str]:
    """A residue label cell as one token per residue: ``;``-separated when it contains ``;``, else its letters."""
    cell = cell.strip()
    if ";" in cell:
        return [t.strip() for t in cell.split(";")]
    return list("".join(cell.split()))


class LabelCodec:
    """Encodes the label cells of one row for a table's level and type, with fixed ``class_names``.

    ``class_names`` is None for regression; ``num_outputs`` is the head's output width (1 for regression with one
    column and for binary, ``C`` for multiclass / multilabel, ``T`` for multi-column regression).
    """

    def __init__(self, settings: TableSettings, class_names: list[str] | None) -> None:
        self.settings = settings
        self.class_names = class_names
        self.index = {c: i for i, c in enumerate(class_names or [])}

    @property
    def num_outputs(self) -> int:
        """Output width of the task's head."""
        s = self.settings
        if s.type == "regression":
            return len(s.label_columns)
        if s.type == "binary":
            return 1
        return len(self.class_names or [])

    @classmethod
    def fit(cls, settings: TableSettings, train_cells: Iterable[dict[str, str]]) -> "LabelCodec":
        """The codec of ``settings``; class names from ``settings.class_names`` or from the training rows' cells.

        Raises :class:`ConfigError` (one line) when the training split shows too few classes (a binary task needs
        exactly 2, a multiclass task at least 2).
        """
        s = settings
        if s.type == "regression":
            return cls(s, None)
        if s.class_names is not None:
            return cls(s, list(s.class_names))
        if s.type == "multilabel" and len(s.label_columns) > 1:
            return cls(s, list(s.label_columns))
        seen: set[str] = set()
        column = s.label_columns[0]
        for cells in train_cells:
            seen.update(cls._names_in(s, cells.get(column, "")))
        names = sort_class_names(seen)
        where = f"table {s.path}"
        if s.type == "binary" and len(names) != 2:
            raise ConfigError(f"{where}: a binary task needs exactly 2 label values in the training split, found "
                              f"{len(names)}: {names[:10]}; set data.table.class_names or data.table.type")
        if s.type == "multiclass" and len(names) < 2:
            raise ConfigError(f"{where}: a multiclass task needs at least 2 classes in the training split, found "
                              f"{names}")
        if s.type == "multilabel" and not names:
            raise ConfigError(f"{where}: no label names in the training split's {column!r} column")
        return cls(s, names)

    @staticmethod
    def _names_in(s: TableSettings, cell: str) -> list[str]:
        if s.level == "residue":
            return [t for t in residue_tokens(cell) if not _masked(s, t)]
        if s.type == "multilabel":
            return [t.strip() for t in cell.split(";") if t.strip()]
        return [cell.strip()] if cell.strip() else []

    def encode(self, cells: dict[str, str], num_residues: int | None = None) -> tuple[object, np.ndarray | None]:
        """``(label, label_mask)`` of one row (``num_residues`` is needed at the residue level).

        Raises :class:`LabelError` with the reason (empty cell, not a number, unknown class, wrong length).
        """
        s = self.settings
        if s.level == "residue":
            if num_residues is None:
                raise ValueError("residue-level labels need num_residues")
            return self._encode_residues(cells.get(s.label_columns[0], ""), num_residues)
        if s.type == "regression":
            values = [self._float(c, cells.get(c, "")) for c in s.label_columns]
            return (values[0] if len(values) == 1 else np.asarray(values, np.float32)), None
        if s.type == "multilabel":
            return self._multi_hot(cells), None
        column = s.label_columns[0]
        cell = cells.get(column, "").strip()
        if not cell:
            raise LabelError(f"empty label in column {column!r}")
        k = self._class_index(cell, f"label {cell!r}")
        return (float(k) if s.type == "binary" else k), None

    def _class_index(self, name: str, what: str) -> int:
        if name not in self.index:
            shown = ", ".join(self.class_names[:20]) + (" ..." if len(self.class_names) > 20 else "")
            raise LabelError(f"{what} is not one of the classes ({shown}); classes come from the training split "
                             f"or data.table.class_names")
        return self.index[name]

    @staticmethod
    def _float(column: str, cell: str) -> float:
        value = _number(cell)
        if not cell:
            raise LabelError(f"empty label in column {column!r}")
        if value is None or not math.isfinite(value):
            raise LabelError(f"label {cell!r} in column {column!r} is not a finite number")
        return value

    def _multi_hot(self, cells: dict[str, str]) -> np.ndarray:
        s = self.settings
        out = np.zeros(len(self.class_names or []), np.float32)
        if len(s.label_columns) > 1:
            for k, column in enumerate(s.label_columns):
                cell = cells.get(column, "").strip().lower()
                if cell not in _TRUE | _FALSE:
                    raise LabelError(f"label {cells.get(column, '')!r} in column {column!r} is not 0/1 (true/false)")
                out[k] = float(cell in _TRUE)
            return out
        for name in self._names_in(s, cells.get(s.label_columns[0], "")):
            out[self._class_index(name, f"label {name!r}")] = 1.0
        return out

    def _encode_residues(self, cell: str, num_residues: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        tokens = residue_tokens(cell)
        if not cell.strip():
            raise LabelError(f"empty residue labels in column {s.label_columns[0]!r}")
        if len(tokens) != num_residues:
            unit = "values" if ";" in cell else "symbols"
            raise LabelError(f"{len(tokens)} residue label {unit} for {num_residues} residues")
        mask = np.array([not _masked(s, t) for t in tokens], bool)
        if s.type == "regression":
            values = np.full(num_residues, np.nan, np.float32)
            for i, t in enumerate(tokens):
                if mask[i]:
                    v = _number(t)
                    if v is None or math.isinf(v):
                        raise LabelError(f"residue {i + 1}: {t!r} is not a number (write nan for no label)")
                    values[i] = v
            mask &= np.isfinite(values)
            return values, mask
        index = np.zeros(num_residues, np.int64)
        for i, t in enumerate(tokens):
            if mask[i]:
                index[i] = self._class_index(t, f"residue {i + 1}: symbol {t!r}")
        return (index if s.type == "multiclass" else index.astype(np.float32)), mask


def _masked(s: TableSettings, token: str) -> bool:
    token = token.strip()
    if len(token) == 1 and token in s.mask_symbols:
        return True
    return token.lower() in NOT_SCORED
