"""What a label table is: its file, the level and type of its labels, and how it is split (``data.*`` settings)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from pa_geo.errors import ConfigError

TableLevel = Literal["protein", "residue", "pair"]
TableType = Literal["regression", "binary", "multiclass", "multilabel"]
SplitMethod = Literal["auto", "mmseqs", "kmer"]
LEVELS: tuple[str, ...] = ("protein", "residue", "pair")
TYPES: tuple[str, ...] = ("regression", "binary", "multiclass", "multilabel")
SPLIT_METHODS: tuple[str, ...] = ("auto", "mmseqs", "kmer")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz")


@dataclass
class TableSettings:
    """A table task's settings; every field is a ``data.table.*`` option of ``pa-geo fit``.

    path            CSV / TSV / Parquet file, one row per example (columns: :mod:`pa_geo.tables`)
    level           ``protein`` (one label per protein), ``residue`` (one per residue), ``pair`` (one per protein
                    pair: columns with suffixes ``_a`` / ``_b``)
    type            ``regression``, ``binary``, ``multiclass`` or ``multilabel``
    label_columns   label column(s); default ``["label"]``. Several columns: multi-target regression, or multilabel
                    with one 0/1 column per label
    class_names     classification: the classes in output order; None = every value seen in the training split,
                    sorted (numerically when all are numbers, else by code point)
    mask_symbols    residue labels written as symbol strings: symbols that mark a residue as not scored
    skip_bad        skip (and count) rows that cannot be read instead of stopping at the first one
    split_fractions train / valid / test fractions of the seeded similarity split (tables without ``split``)
    split_identity / split_coverage   MMseqs2 ``--min-seq-id`` / ``-c`` of that split
    split_method    ``auto`` (MMseqs2 when ``mmseqs`` is on PATH, else the k-mer grouping), ``mmseqs``, ``kmer``
    split_seed      seed of the order in which sequence clusters are dealt to the splits
    """

    path: str | Path | None = None
    level: TableLevel = "protein"
    type: TableType = "regression"
    label_columns: list[str] = field(default_factory=lambda: ["label"])
    class_names: list[str] | None = None
    mask_symbols: str = "."
    skip_bad: bool = False
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_identity: float = 0.3
    split_coverage: float = 0.8
    split_method: SplitMethod = "auto"
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.path is None:
            raise ConfigError(f"data.table describes a {self.level}-level {self.type} table, but data.table.path is "
                              f"not set: give --data.table.path <your table: .csv, .tsv or .parquet>")
        self.path = Path(self.path)
        if isinstance(self.label_columns, str):
            self.label_columns = [self.label_columns]
        self.label_columns = [str(c).strip() for c in self.label_columns]
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
        self.split_fractions = tuple(float(f) for f in self.split_fractions)  # type: ignore[assignment]
        self.check()

    def check(self) -> None:
        """One-line :class:`ConfigError` for a setting outside its range or a combination tables cannot express."""
        where = f"table {self.path}"
        _choice(where, "data.table.level", self.level, LEVELS)
        _choice(where, "data.table.type", self.type, TYPES)
        _choice(where, "data.table.split_method", self.split_method, SPLIT_METHODS)
        if not self.path.name.lower().endswith(TABLE_SUFFIXES):
            raise ConfigError(f"{where}: unknown table format; use one of {', '.join(TABLE_SUFFIXES)}")
        if not self.label_columns or any(not c for c in self.label_columns):
            raise ConfigError(f"{where}: data.table.label_columns must name at least one column")
        if len(set(self.label_columns)) != len(self.label_columns):
            raise ConfigError(f"{where}: data.table.label_columns repeats a column: {self.label_columns}")
        multi = len(self.label_columns) > 1
        if multi and self.type in ("binary", "multiclass"):
            raise ConfigError(f"{where}: a {self.type} task reads one label column, got {self.label_columns}")
        if multi and self.level == "residue":
            raise ConfigError(f"{where}: residue-level labels are one column (a string per protein), got "
                              f"{self.label_columns}")
        if self.level == "residue" and self.type == "multilabel":
            raise ConfigError(f"{where}: residue-level multilabel tables are not supported; use multiclass, binary "
                              f"or regression")
        if self.class_names is not None:
            if self.type == "regression":
                raise ConfigError(f"{where}: data.table.class_names is for classification, not regression")
            if len(set(self.class_names)) != len(self.class_names) or any(not c for c in self.class_names):
                raise ConfigError(f"{where}: data.table.class_names must be distinct non-empty names, got "
                                  f"{self.class_names}")
            wanted = 2 if self.type == "binary" else None
            if wanted and len(self.class_names) != wanted:
                raise ConfigError(f"{where}: a binary task has 2 class names (negative, positive), got "
                                  f"{self.class_names}")
            if multi and self.class_names != self.label_columns:
                raise ConfigError(f"{where}: multilabel with one column per label takes the column names as class "
                                  f"names; leave data.table.class_names unset")
            clash = [c for c in self.class_names if len(c) == 1 and c in self.mask_symbols]
            if clash:
                raise ConfigError(f"{where}: class name(s) {clash} are also mask symbols ({self.mask_symbols!r})")
        fr = self.split_fractions
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0 or fr[1] <= 0:
            raise ConfigError(f"{where}: data.table.split_fractions must be three numbers >= 0 summing to 1 with train "
                              f"and valid > 0, got {list(fr)}")
        if not 0.0 < self.split_identity <= 1.0 or not 0.0 < self.split_coverage <= 1.0:
            raise ConfigError(f"{where}: data.table.split_identity and data.table.split_coverage must be in (0, 1], got "
                              f"{self.split_identity} and {self.split_coverage}")

    @property
    def is_classification(self) -> bool:
        """Binary, multiclass or multilabel."""
        return self.type != "regression"


def _choice(where: str, name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: {name} must be one of {', '.join(choices)}, got {value!r}")
