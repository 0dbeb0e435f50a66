"""Seeded train / valid / test splits grouped by sequence similarity, written next to the table they split.

Grouping (``method``):

* ``mmseqs`` -- MMseqs2 (Steinegger & Soeding 2017) ``easy-cluster`` with ``--min-seq-id <identity> -c <coverage>
  --cov-mode 0`` (both sequences covered), the usual way to keep homologues out of each other's splits (e.g. 30%
  identity at 80% coverage). Needs the ``mmseqs`` program on PATH (Debian / Ubuntu: ``apt-get install mmseqs2``;
  it runs as a separate program, nothing of it is imported).
* ``kmer`` -- without MMseqs2: :func:`pa_geo.datasets.splits.sequence_similarity_groups`, single linkage over
  shared 5-mers, which joins sequences of roughly >= 80% identity (fragments of one another included) but *not*
  remote homologues: ``identity`` and ``coverage`` do not apply to it, and the split file says so.
* ``auto`` -- ``mmseqs`` when the program is found, else ``kmer`` (one log line says which).

Clusters are then dealt to the splits by :func:`pa_geo.datasets.splits.split_by_group` (seeded order, fractions).
A protein pair's group is its two clusters (unordered), so a pair and its copy with A and B swapped, or another
pair of the same two families, stay together; a protein may still appear in pairs of different splits.

The split file (``<table>.split.csv``) has ``# key: value`` header lines (method, parameters, program version, row
count) and the columns ``id,split,group``. It is written once, atomically; every later run reads it, so the split
never changes under a model. A table with ids the file does not have, or settings that differ from the file's, is
a one-line :class:`ConfigError` that says to delete the file to split again.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from pa_geo.datasets.splits import SPLIT_NAMES, sequence_similarity_groups, split_by_group
from pa_geo.errors import ConfigError

LOG = logging.getLogger(__name__)
SPLIT_FILE_SUFFIX = ".split.csv"
KMER_RULE = "shared 5-mers, single linkage (~80% identity; identity/coverage not used)"


@dataclass(frozen=True)
class SplitParams:
    """How a split is made: ``method`` (``auto`` / ``mmseqs`` / ``kmer``), MMseqs2 ``identity`` / ``coverage``,
    train / valid / test ``fractions`` and the ``seed`` of the cluster order."""

    method: str = "auto"
    identity: float = 0.3
    coverage: float = 0.8
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0


def mmseqs_program() -> str | None:
    """Path of ``mmseqs`` on PATH, or None."""
    return shutil.which("mmseqs")


def resolve_method(method: str) -> str:
    """``auto`` -> ``mmseqs`` when the program is on PATH, else ``kmer``; ``mmseqs`` without the program is a
    one-line :class:`ConfigError`."""
    if method not in ("auto", "mmseqs", "kmer"):
        raise ConfigError(f"split method must be auto, mmseqs or kmer, got {method!r}")
    if method == "kmer":
        return "kmer"
    if mmseqs_program() is None:
        if method == "mmseqs":
            raise ConfigError("split method mmseqs: the mmseqs program is not on PATH (Debian/Ubuntu: "
                              "apt-get install mmseqs2), or use data.table.split_method kmer")
        return "kmer"
    return "mmseqs"


def mmseqs_version() -> str:
    """``mmseqs version`` output (``""`` when it cannot be run)."""
    program = mmseqs_program()
    if program is None:
        return ""
    try:
        out = subprocess.run([program, "version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def mmseqs_clusters(sequences: Sequence[str], identity: float, coverage: float,
                    threads: int | None = None) -> np.ndarray:
    """``[N]`` int64 cluster labels of ``sequences`` from ``mmseqs easy-cluster`` (labelled by first member).

    Raises :class:`ConfigError` (one line, with the end of MMseqs2's output) when the program fails.
    """
    program = mmseqs_program()
    if program is None:
        raise ConfigError("mmseqs is not on PATH (Debian/Ubuntu: apt-get install mmseqs2)")
    n = len(sequences)
    if n == 0:
        return np.zeros(0, np.int64)
    with tempfile.TemporaryDirectory(prefix="pa_geo_mmseqs_") as tmp:
        fasta = Path(tmp) / "in.fasta"
        fasta.write_text("".join(f">{i}\n{s}\n" for i, s in enumerate(sequences)))
        cmd = [program, "easy-cluster", str(fasta), str(Path(tmp) / "out"), str(Path(tmp) / "work"),
               "--min-seq-id", str(identity), "-c", str(coverage), "--cov-mode", "0", "-v", "1",
               "--threads", str(threads or max(1, os.cpu_count() or 1))]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            tail = " ".join((run.stderr or run.stdout).split())[-300:]
            raise ConfigError(f"mmseqs easy-cluster failed (exit {run.returncode}): {tail}")
        rep_of = np.arange(n)  # a sequence MMseqs2 leaves out stays a cluster of its own
        with open(Path(tmp) / "out_cluster.tsv") as fh:
            for line in fh:
                rep, member = line.split()
                rep_of[int(member)] = int(rep)
    _, first, labels = np.unique(rep_of, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels.reshape(-1)]


def cluster_sequences(sequences: Sequence[str], params: SplitParams) -> tuple[np.ndarray, str]:
    """``([N] int64 cluster labels, description of the method used)`` with ``params.method`` resolved."""
    method = resolve_method(params.method)
    if method == "mmseqs":
        labels = mmseqs_clusters(sequences, params.identity, params.coverage)
        return labels, (f"mmseqs2 easy-cluster --min-seq-id {params.identity} -c {params.coverage} --cov-mode 0 "
                        f"(MMseqs2 {mmseqs_version()})")
    return sequence_similarity_groups(sequences), f"kmer: {KMER_RULE}"


def group_items(items: Sequence[Sequence[str | None]], params: SplitParams) -> tuple[list[str], str]:
    """One group label per item (a row: one sequence, or two for a pair) and the method's description.

    Distinct sequences are clustered once; an item's group is its clusters, sorted (pairs: unordered). An item
    with an unknown sequence (``None``: its row could not be read) is a group of its own.
    """
    distinct = sorted({s for item in items for s in item if s})
    labels, method = cluster_sequences(distinct, params) if distinct else (np.zeros(0, np.int64), "none")
    cluster = dict(zip(distinct, labels.tolist()))
    groups = []
    for k, item in enumerate(items):
        if any(not s for s in item):
            groups.append(f"row{k}")
        else:
            groups.append("c" + "+".join(str(c) for c in sorted(cluster[s] for s in item)))
    return groups, method


def split_file_for(table: str | Path) -> Path:
    """``labels.csv`` -> ``labels.csv.split.csv`` (next to the table)."""
    table = Path(table)
    return table.with_name(table.name + SPLIT_FILE_SUFFIX)


def _header(params: SplitParams, method: str, table: Path, n: int) -> dict[str, str]:
    return {"table": table.name, "method": method, "identity": str(params.identity),
            "coverage": str(params.coverage), "fractions": ",".join(f"{f:g}" for f in params.fractions),
            "seed": str(params.seed), "rows": str(n)}


def write_split_file(path: Path, ids: Sequence[str], splits: Sequence[str], groups: Sequence[str],
                     header: dict[str, str]) -> None:
    """Write ``# key: value`` lines then ``id,split,group`` rows, atomically (temporary file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            fh.write(f"# pa_geo similarity split; delete this file to split {header.get('table', 'the table')} "
                     f"again\n")
            for key, value in header.items():
                fh.write(f"# {key}: {value}\n")
            writer = csv.writer(fh)
            writer.writerow(["id", "split", "group"])
            writer.writerows(zip(ids, splits, groups))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the split file ({err.strerror or err}); give the table a "
                          f"split column instead") from None


def read_split_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``({id: split}, {header key: value})`` of a split file; one-line :class:`ConfigError` when malformed."""
    header: dict[str, str] = {}
    assignment: dict[str, str] = {}
    with open(path, newline="") as fh:
        lines = [line for line in fh]
    body = []
    for line in lines:
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    reader = csv.DictReader(body)
    if reader.fieldnames is None or not {"id", "split"} <= set(reader.fieldnames):
        raise ConfigError(f"{path}: not a split file (needs id,split columns); delete it to split again")
    for row in reader:
        if row["split"] not in SPLIT_NAMES:
            raise ConfigError(f"{path}: id {row['id']!r} has split {row['split']!r}; delete the file to split again")
        assignment[row["id"]] = row["split"]
    return assignment, header


def _check_settings(path: Path, header: dict[str, str], params: SplitParams) -> None:
    wanted = _header(params, "", Path(header.get("table", "")), 0)
    changed = [f"{k} {header.get(k)!r} (asked: {wanted[k]!r})" for k in ("fractions", "seed", "identity",
                                                                           "coverage")
               if header.get(k) != wanted[k]]
    method = header.get("method", "").split()[0].rstrip(":")
    asked = {"mmseqs": "mmseqs2", "kmer": "kmer"}.get(params.method)
    if asked and method != asked:
        changed.append(f"method {method!r} (asked: {asked!r})")
    if changed:
        raise ConfigError(f"{path}: the split was made with {'; '.join(changed)}; delete {path.name} to split "
                          f"again with the new settings")


def table_split(table: str | Path, ids: Sequence[str], sequences: Callable[[], list[tuple[str | None, ...]]],
                params: SplitParams) -> dict[str, str]:
    """``{id: "train" | "valid" | "test"}`` for the rows of ``table``, from its split file, or made now and written.

    ``sequences()`` is called only when a new split is made: one tuple per id (one sequence, or two for a pair;
    ``None`` where the row cannot be read). Raises :class:`ConfigError` (one line) when the split file lacks ids of
    the table (the table changed) or was made with other settings.
    """
    table = Path(table)
    path = split_file_for(table)
    if not path.is_file():  # several processes (DDP ranks) may open the table at once: one makes the split
        with _lock(path):
            if not path.is_file():
                return _make_split(table, path, ids, sequences, params)
    assignment, header = read_split_file(path)
    _check_settings(path, header, params)
    new = [i for i in ids if i not in assignment]
    if new:
        shown = ", ".join(new[:5]) + (" ..." if len(new) > 5 else "")
        raise ConfigError(f"{table}: {len(new)} id(s) are not in its split file {path.name} ({shown}): the table "
                          f"changed since the split was made; delete {path.name} to split again (or add a split "
                          f"column)")
    LOG.info("split of %s read from %s (%s)", table.name, path.name, header.get("method", "?"))
    return {i: assignment[i] for i in ids}


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on a lock file in the temporary folder named after the split file's path."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    try:
        fh = open(Path(tempfile.gettempdir()) / f"pa_geo_split_{digest}.lock", "w")
    except OSError:
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _make_split(table: Path, path: Path, ids: Sequence[str], sequences: Callable[[], list[tuple[str | None, ...]]],
                params: SplitParams) -> dict[str, str]:
    groups, method = group_items(sequences(), params)
    parts = split_by_group(list(ids), groups, params.fractions, params.seed)
    split_of = np.empty(len(ids), dtype=object)
    for name, index in parts.items():
        split_of[index] = name
    write_split_file(path, list(ids), list(split_of), groups, _header(params, method, table, len(ids)))
    counts = ", ".join(f"{name} {len(parts[name])}" for name in SPLIT_NAMES)
    LOG.info("split %s by %s into %s; written to %s", table.name, method, counts, path)
    return dict(zip(ids, split_of.tolist()))
