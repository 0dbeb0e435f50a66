"""Score per-residue secondary-structure predictions against reference DSSP strings.

References: an 8-state table (``id<TAB>dssp8``, one letter per residue as :func:`pa_geo.io.read_structure` reads
the chain, e.g. ``data/pdb_dssp/dssp8.tsv``; ``-`` = no assignment, not scored) and 3-state strings (one
``<id>.pdb.dssp`` file per chain: the string of ``H``, ``E``, ``-``, then the file name). Q8 compares the ``ss8``
column with the 8-state reference, Q3 the ``ss3`` column with the 3-state strings (``-`` read as ``C``); both are
pooled over residues (every residue of every chain counts once), as the model card reports them.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pa_geo.errors import DatasetError
from pa_geo.pretrained.tasks import SS3_OF_SS8, SS8_CLASSES

SS3_CLASSES = "HEC"
NOT_SCORED = "-"


def read_dssp8_table(path: str | Path) -> dict[str, str]:
    """``{id: 8-state string}`` of a TSV with ``id`` and ``dssp8`` columns."""
    with open(path, newline="") as fh:
        return {row["id"]: row["dssp8"] for row in csv.DictReader(fh, delimiter="\t")}


def read_dssp3_strings(folder: str | Path, suffix: str = ".pdb.dssp") -> dict[str, str]:
    """``{id: 3-state string in H / E / C}`` of every ``<id><suffix>`` file in ``folder`` (``-`` -> ``C``)."""
    out = {}
    for path in sorted(Path(folder).glob(f"*{suffix}")):
        text = path.read_text().split()
        out[path.name[: -len(suffix)]] = text[0].replace("-", "C") if text else ""
    return out


def ss3_string(ss8: str) -> str:
    """The 3-state reduction (H G I -> H, E B -> E, rest -> C) of an 8-state string."""
    return "".join(SS3_OF_SS8.get(c, "C") for c in ss8)


def _per_chain(frame: pd.DataFrame, column: str) -> dict[str, str]:
    return {str(rid): "".join(part[column].astype(str)) for rid, part in frame.groupby("id", sort=False)}


def score_dssp(frame: pd.DataFrame, dssp8: dict[str, str], dssp3: dict[str, str] | None = None) -> dict[str, Any]:
    """Scores of prediction rows (``id``, ``ss8``, ``ss3`` per residue in chain order) against references.

    Returns ``chains``, ``residues`` (scored), ``q8``, ``q3_dssp8`` (predicted ``ss3`` against the 8-state
    reference's reduction), ``q3`` (against ``dssp3`` when given), ``recall`` ``{state: share of the reference's
    residues of that state predicted as it}`` and ``accuracy_macro`` (mean recall over the states present).
    A chain whose prediction and reference lengths differ is a one-line :class:`DatasetError`.
    """
    ss8, ss3 = _per_chain(frame, "ss8"), _per_chain(frame, "ss3")
    missing = sorted(set(ss8) - set(dssp8))
    if missing:
        raise DatasetError(f"no 8-state reference for {len(missing)} predicted chain(s): {', '.join(missing[:5])}")
    pred8, ref8, pred3, ref3 = [], [], [], []
    for rid, pred in ss8.items():
        ref = dssp8[rid]
        if len(ref) != len(pred):
            raise DatasetError(f"{rid}: {len(pred)} predicted residues, {len(ref)} in the 8-state reference")
        keep = [i for i, c in enumerate(ref) if c != NOT_SCORED]
        pred8 += [pred[i] for i in keep]
        ref8 += [ref[i] for i in keep]
        if dssp3 is not None:
            if len(dssp3[rid]) != len(pred):
                raise DatasetError(f"{rid}: {len(pred)} predicted residues, {len(dssp3[rid])} in the 3-state string")
            pred3 += list(ss3[rid])
            ref3 += list(dssp3[rid])
    p8, r8 = np.array(pred8), np.array(ref8)
    recall = {c: float((p8[r8 == c] == c).mean()) for c in SS8_CLASSES if (r8 == c).any()}
    out: dict[str, Any] = {"chains": len(ss8), "residues": int(len(r8)), "q8": float((p8 == r8).mean()),
                           "q3_dssp8": float((np.array(list(ss3_string("".join(pred8)))) ==
                                              np.array(list(ss3_string("".join(ref8))))).mean()),
                           "recall": recall, "accuracy_macro": float(np.mean(list(recall.values())))}
    if dssp3 is not None:
        out["q3"] = float((np.array(pred3) == np.array(ref3)).mean())
    return out
