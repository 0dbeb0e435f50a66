"""Rows of ``pa-geo predict --input``: one per protein (protein / pair level) or one per residue in chain order.

Columns: ``id``; residue level adds ``chain, residue_number, insertion_code, residue``; then the value columns
every prediction shares (:func:`pa_geo.tasks.kinds.rows.value_columns`: ``prediction`` = the class name as in the
training table, or the value; ``prob_<class>`` per class for classification).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd


PROB_DECIMALS = 4


def with_residue_columns(frame: pd.DataFrame, records: dict[str, Any]) -> pd.DataFrame:
    """A kind's prediction rows with ``chain, residue_number, insertion_code, residue`` after ``id`` when they are
    per residue (a ``residue_index`` column: node i of a residue graph is residue i of the record's protein);
    other rows (per protein, per residue pair) as they are. ``records`` maps record id -> record."""
    if "residue_index" not in frame.columns:
        return frame
    parts = []
    for rid, rows in frame.groupby("id", sort=False):
        protein = records[str(rid)].proteins[0]
        index = rows["residue_index"].to_numpy()
        extra = pd.DataFrame({"chain": protein.chain_ids[index].astype(str),
                              "residue_number": protein.residue_numbers[index],
                              "insertion_code": protein.insertion_codes[index].astype(str),
                              "residue": [protein.sequence[k] for k in index]}, index=rows.index)
        values = rows.drop(columns=[c for c in ("residue_index", "residue_number") if c in rows.columns])
        parts.append(pd.concat([values[["id"]], extra, values.drop(columns=["id"])], axis=1))
    return pd.concat(parts)


def write_predictions(frames: Sequence[pd.DataFrame], path: Path) -> int:
    """Concatenate ``frames`` and write them to ``path`` atomically (probabilities to 4 decimals); returns the row
    count."""
    from pa_geo.train.predictions import write_csv_atomic

    frame = pd.concat(list(frames), ignore_index=True) if frames else pd.DataFrame({"id": []})
    probs = [c for c in frame.columns if str(c).startswith("prob_")]
    frame[probs] = frame[probs].round(PROB_DECIMALS)
    write_csv_atomic(frame, path)
    return len(frame)
