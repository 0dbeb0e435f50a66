"""Per-record checks shared by the dataset readers: what is refused, what is masked, and one warning with counts.

A record with an empty sequence, a character outside the protein alphabet or a non-finite regression label is
refused (left out of the split); a label position that the format itself can mask (PEER secondary structure's
``valid_mask``, contact's ``valid_mask``) is masked instead. Either way nothing is dropped silently: the reader
calls :meth:`RecordChecks.report` once per file, which warns with the counts per reason and the first records
refused, and raises :class:`~pa_geo.errors.DatasetError` when no record is left.
"""
from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from typing import NamedTuple

from pa_geo.errors import DatasetError

# IUPAC protein letters, any case (B, Z, J, U, O, X included), as read_fasta accepts them.
_PROTEIN_LETTERS = re.compile(r"[A-Za-z]+")
_SHOWN = 3  # refused records named in the warning


class DatasetWarning(UserWarning):
    """Records refused or label positions masked while reading a dataset file (the message carries the counts)."""


class Problem(NamedTuple):
    """Why a record is refused: ``kind`` (counted) and ``detail`` (shown for the first records)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}" if self.detail else self.kind


def sequence_problem(sequence: str) -> Problem | None:
    """Why ``sequence`` cannot be a protein (empty, or characters outside the amino-acid alphabet), else None."""
    if not sequence:
        return Problem("empty sequence")
    if not _PROTEIN_LETTERS.fullmatch(sequence):
        bad = sorted({c for c in sequence if not c.isascii() or not c.isalpha()})
        return Problem("characters outside the amino-acid alphabet", str(bad))
    return None


def label_problem(value: float) -> Problem | None:
    """A non-finite label (NaN / inf) is a problem; a finite number is not (None)."""
    return None if math.isfinite(value) else Problem("non-finite label", f"({value})")


class RecordChecks:
    """Collects the refusals and maskings of one dataset file; :meth:`report` warns once with the counts."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.refused: Counter[str] = Counter()
        self.masked: Counter[str] = Counter()
        self.examples: list[str] = []

    def refuse(self, record: str, problem: Problem) -> None:
        """Leave ``record`` (e.g. ``"[17]"`` or ``"[row 19]"``) out of the split because of ``problem``."""
        self.refused[problem.kind] += 1
        if len(self.examples) < _SHOWN:
            self.examples.append(f"{record} {problem}")

    def mask(self, reason: str, count: int) -> None:
        """Record that ``count`` label positions were masked for ``reason``."""
        if count:
            self.masked[reason] += int(count)

    def report(self, total: int) -> None:
        """Warn (:class:`DatasetWarning`, one line) about what was refused / masked among ``total`` records;
        :class:`DatasetError` when all ``total > 0`` records were refused."""
        n = sum(self.refused.values())
        parts = []
        if n:
            counts = ", ".join(f"{c} {k}" for k, c in self.refused.most_common())
            parts.append(f"refused {n} of {total} records ({counts}; first: {'; '.join(self.examples)})")
        if self.masked:
            parts.append("masked " + ", ".join(f"{c} label positions ({k})" for k, c in self.masked.most_common()))
        if total and n == total:
            raise DatasetError(f"{self.source}: every record was refused: {'; '.join(parts)}")
        if parts:
            warnings.warn(f"{self.source}: {'; '.join(parts)}", DatasetWarning, stacklevel=3)
