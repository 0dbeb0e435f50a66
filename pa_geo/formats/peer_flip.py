"""Readers for PEER's three FLIP tasks (aav, gb1, thermostability) in FLIP's released CSV format.

A FLIP split file (``splits/<name>.csv`` inside FLIP's ``splits.zip``) has the columns ``sequence``, ``target``,
``set`` (``train`` / ``test``) and ``validation`` (``True`` for the validation part of the train set). As in
TorchDrug's ``FLIPDataset.load_csv``: train = ``set == train`` and not ``validation``; valid = ``validation ==
True``; test = ``set == test``. Expected location (TorchDrug's): ``<root>/<task>/splits/<split file>.csv``.

AAV with ``keep_mutation_region=True`` (what every PEER AAV config sets) keeps ``sequence[474:674]`` of each VP1
sequence, exactly PEER's ``peer/flip.py`` ``AAV.region = slice(474, 674)``: 0-based, end exclusive, i.e. residues
475..674 (1-based), 200 residues for every sequence at least 674 long, whatever the indels before 475.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein
from pa_geo.formats.record_checks import RecordChecks, label_problem, sequence_problem
from pa_geo.datasets.records import TaskRecord

_FLIP = "https://github.com/J-SNACKKB/FLIP/raw/d5c35cc716ca93c3c74a0b43eef5b60cbf88521f/splits"
FLIP_COLUMNS = ("sequence", "target", "set", "validation")


@dataclass(frozen=True)
class FlipSource:
    """One FLIP task: folder under ``root``, the split file PEER uses, the other split files FLIP ships, the zip."""

    folder: str
    default_split: str
    split_files: tuple[str, ...]
    url: str
    region: tuple[int, int] | None = None  # (start, stop) Python slice of the mutated region, if PEER crops to it


FLIP_SOURCES: dict[str, FlipSource] = {
    "aav": FlipSource("aav", "two_vs_many", ("des_mut", "low_vs_high", "mut_des", "one_vs_many", "sampled",
                                             "seven_vs_many", "two_vs_many"), f"{_FLIP}/aav/splits.zip",
                     region=(474, 674)),
    "gb1": FlipSource("gb1", "two_vs_rest", ("one_vs_rest", "two_vs_rest", "three_vs_rest", "low_vs_high",
                                             "sampled"), f"{_FLIP}/gb1/splits.zip"),
    "thermostability": FlipSource("thermostability", "human_cell", ("human", "human_cell", "mixed_split"),
                                  f"{_FLIP}/meltome/splits.zip"),
}


def flip_csv_path(task: str, root: str | Path, flip_split: str | None = None) -> Path:
    """The FLIP CSV of ``task`` (``flip_split`` defaults to PEER's choice) under ``root``."""
    src = FLIP_SOURCES[task]
    name = flip_split or src.default_split
    if name not in src.split_files:
        raise DatasetError(f"{task}: unknown FLIP split file {name!r}; known: {', '.join(src.split_files)}")
    root = Path(root)
    rel = Path(src.folder) / "splits" / f"{name}.csv"
    for candidate in (root / rel, root / "splits" / f"{name}.csv", root / f"{name}.csv"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{root / rel}: FLIP {task} split file not found; unzip {src.url} into {root / src.folder}")


def _is_true(column: pd.Series) -> np.ndarray:
    return column.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0")).to_numpy(bool)


def load_flip(task: str, root: str | Path, split: str, flip_split: str | None = None,
              keep_mutation_region: bool = False) -> list[TaskRecord]:
    """Read ``split`` (``train`` / ``valid`` / ``test``) of a FLIP task into sequence-only regression records.

    ``keep_mutation_region``: crop each sequence to the task's ``FlipSource.region`` (AAV: ``[474:674]``).
    Rows with an empty sequence, characters outside the amino-acid alphabet or a missing / non-finite target are
    left out with one warning giving the counts; a target that is text (``abc``) is a one-line ``DatasetError``.
    """
    if task not in FLIP_SOURCES:
        raise DatasetError(f"{task}: not a FLIP task ({', '.join(FLIP_SOURCES)})")
    path = flip_csv_path(task, root, flip_split)
    try:
        df = pd.read_csv(path, dtype={"sequence": str, "set": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DatasetError(f"{path}: not a readable CSV ({' '.join(str(err).split())})") from None
    missing = [c for c in ("sequence", "target", "set") if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing FLIP column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    in_valid = _is_true(df["validation"]) if "validation" in df.columns else np.zeros(len(df), bool)
    sets = df["set"].astype(str).str.strip().to_numpy()
    if split == "train":
        keep = (sets == "train") & ~in_valid
    elif split == "valid":
        keep = in_valid
    elif split == "test":
        keep = sets == "test"
    else:
        raise DatasetError(f"{path}: unknown split {split!r}; FLIP splits are train, valid, test")
    targets = pd.to_numeric(df["target"], errors="coerce").to_numpy(np.float64)
    region = slice(*FLIP_SOURCES[task].region) if keep_mutation_region and FLIP_SOURCES[task].region else slice(None)
    checks = RecordChecks(str(path))
    records = []
    for row in np.flatnonzero(keep):
        seq = df["sequence"].iat[row]
        seq = seq.strip() if isinstance(seq, str) else ""  # pandas reads an empty cell as NaN
        raw_target = df["target"].iat[row]
        if np.isnan(targets[row]) and not pd.isna(raw_target) and str(raw_target).strip().lower() != "nan":
            raise DatasetError(f"{path}[row {row + 2}]: target {raw_target!r} is not a number")
        problem = sequence_problem(seq) or label_problem(float(targets[row]))
        if problem:
            checks.refuse(f"[row {row + 2}]", problem)
            continue
        rid = f"{task}/{split}/{row}"
        crop = seq[region]
        if not crop:
            raise DatasetError(f"{path}[row {row + 2}]: sequence of {len(seq)} residues ends before the "
                               f"mutated region [{region.start}:{region.stop}]")
        records.append(TaskRecord(rid, [Protein.from_sequence(rid, crop, source=str(path))], float(targets[row])))
    checks.report(int(keep.sum()))
    return records
