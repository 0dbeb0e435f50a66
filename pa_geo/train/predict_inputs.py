"""What ``predict`` reads when it is given files (``data.predict_inputs``, ``pa-geo predict --input``): the inputs'
records, the inputs left out (one line each), and the rows written for them.

Records come from :func:`pa_geo.tables.inputs.read_predict_inputs` (structure files, FASTA files, tables, folders);
for a task without coordinates every protein is read as its sequence, so the graphs are those the model was trained
on whatever file a protein came from. A task's ``options["structure_input"]`` says what its structures were:
``"ca_trace"`` (every input is reduced to its CA trace, :func:`pa_geo.io.traces.ca_trace`, so a full-backbone file
gives the model what it learned from) or ``"backbone"`` (an input that is a CA trace is refused in one line).

Rows: one per protein (protein / pair level) or one per residue in chain order with ``id, chain, residue_number,
insertion_code, residue``, then the value columns (``prediction``, ``prob_<class>`` rounded to 4 decimals; a
multi-task model's other heads after them: :mod:`pa_geo.train.prediction_columns`), in input order.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError
from pa_geo.io.protein import AtomTable, Protein
from pa_geo.io.traces import ca_trace, is_ca_trace
from pa_geo.tables.inputs import read_predict_inputs
from pa_geo.tasks.kinds import get_kind
from pa_geo.tasks.spec import TaskSpec

PROB_DECIMALS = 4
STRUCTURE_INPUT = "structure_input"  # TaskSpec.options key: "ca_trace" | "backbone" (what the model was trained on)
CA_TRACE_REFUSED = "a CA trace (no residue has N, CA and C), but the model reads full backbones"


def sequence_only(protein: Protein) -> Protein:
    """``protein`` without coordinates or atoms (chains, numbering and sequence kept)."""
    if not protein.has_structure:
        return protein
    return dataclasses.replace(protein, backbone=np.full_like(protein.backbone, np.nan), atoms=AtomTable.empty(),
                               has_structure=False)


class PredictInputs:
    """The records of ``paths`` for ``spec``'s model and the inputs left out (:attr:`refused`: ``"<what>: <why>"``).

    Raises :class:`ConfigError` when ``paths`` is empty.
    """

    def __init__(self, paths: Sequence[str | Path], spec: TaskSpec) -> None:
        self.paths = [str(p) for p in paths]
        records, self.refused = read_predict_inputs(self.paths, "pair" if get_kind(spec).num_proteins == 2
                                                    else "protein")
        if not spec.has_structures:
            for r in records:
                r.proteins = [sequence_only(p) for p in r.proteins]
        records = self._structure_input(records, spec.options.get(STRUCTURE_INPUT))
        self._all = records
        self._order = {str(r.id): i for i, r in enumerate(records)}
        self._excluded: set[str] = set()

    def _structure_input(self, records: list[TaskRecord], mode: str | None) -> list[TaskRecord]:
        """``mode`` ``"ca_trace"``: every protein as its CA trace; ``"backbone"``: records with a CA-trace protein
        refused (one line each); else the records as they are."""
        if mode == "ca_trace":
            for r in records:
                r.proteins = [ca_trace(p) for p in r.proteins]
        elif mode == "backbone":
            traces = [r for r in records if any(is_ca_trace(p) for p in r.proteins)]
            self.refused += [f"{r.id}: {CA_TRACE_REFUSED}" for r in traces]
            records = [r for r in records if not any(is_ca_trace(p) for p in r.proteins)]
        return records

    @property
    def records(self) -> list[TaskRecord]:
        """The records still to predict, in input order."""
        return [r for r in self._all if str(r.id) not in self._excluded]

    def exclude(self, refused: Sequence[tuple[str, str, str]]) -> None:
        """Leave out the records with a protein a backbone refused (``(backbone, protein id, reason)``)."""
        reasons = {pid: reason for _, pid, reason in refused}
        for r in self._all:
            bad = [p.id for p in r.proteins if p.id in reasons]
            if bad and str(r.id) not in self._excluded:
                self._excluded.add(str(r.id))
        self.refused += [f"{pid}: {reason}" for pid, reason in reasons.items()]

    def skipped_in(self, meta: dict[str, Any]) -> None:
        """Add the records the example-store build skipped (``meta.json``'s reasons) to :attr:`refused`."""
        self.refused += [r for r in meta.get("skipped_reasons", []) if r not in self.refused]

    def fingerprint(self) -> str:
        """16 hex of the inputs (path, size, mtime) and the records left out: what their examples depend on."""
        h = hashlib.sha256()
        for path in sorted(self.paths):
            files = sorted(q for q in Path(path).rglob("*") if q.is_file()) if Path(path).is_dir() else [Path(path)]
            for f in files:
                st = f.stat() if f.exists() else None
                h.update(f"{f.resolve()}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\n".encode())
        h.update("\0".join(sorted(self._excluded)).encode())
        return h.hexdigest()[:16]

    def rows(self, frame: pd.DataFrame, atom_graphs: bool = False) -> pd.DataFrame:
        """The kind's prediction rows of the inputs with residue columns, in input order, probabilities rounded."""
        if "residue_index" in frame.columns and atom_graphs:
            raise ConfigError("per-residue rows of an atom-graph model are not written for input files (one row "
                              "per atom); predict its task's split with pa-geo predict --config")
        frame = with_residue_columns(frame, {str(r.id): r for r in self._all})
        if len(frame):
            frame = frame.iloc[np.argsort([self._order[str(i)] for i in frame["id"]], kind="stable")]
        probs = [c for c in frame.columns if str(c).startswith("prob_") or "_prob_" in str(c)]
        frame[probs] = frame[probs].round(PROB_DECIMALS)
        return frame.reset_index(drop=True)


def with_residue_columns(frame: pd.DataFrame, records: dict[str, TaskRecord]) -> pd.DataFrame:
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
