"""``pa-geo inspect PATH [PATH ...] [--json]``: check structure files / ATOM3D LMDBs before a long run.

For each structure file: its protein chains with sequence, length and the fraction of residues whose backbone
(N, CA, C, O) is complete; for an ATOM3D LMDB directory: ``pa_geo.formats.atom3d.lmdb_summary``. A file that
cannot be read gets one error line instead. Exit status 0 when every input was read, 1 when any was refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pa_geo.errors import PaGeoError
from pa_geo.io.protein import Protein
from pa_geo.io.structure import read_structure

_SEQ_SHOWN = 50  # table mode: sequence characters shown per chain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``inspect``'s arguments to its sub-parser."""
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="PDB/mmCIF files (optionally .gz) or ATOM3D LMDB directories")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON array (one object per input, in input order) instead of a table")


def chain_summaries(protein: Protein) -> list[dict[str, Any]]:
    """Per chain, in chain order: ``{"id", "sequence", "length", "backbone_complete"}``.

    ``backbone_complete`` is the fraction of the chain's residues with all four backbone atoms (N, CA, C, O).
    """
    complete = protein.backbone_mask.all(axis=1)
    out = []
    for chain, seq in protein.chain_sequences.items():
        mask = protein.chain_ids == chain
        out.append({"id": str(chain), "sequence": seq, "length": len(seq),
                    "backbone_complete": round(float(complete[mask].mean()), 4)})
    return out


def _lmdb_summary(path: str) -> dict[str, Any]:
    try:
        from pa_geo.formats.atom3d import lmdb_summary
    except ImportError as err:
        return {"file": path, "error": f"{path}: ATOM3D LMDB support is not available ({err})"}
    return {"file": path, "lmdb": lmdb_summary(path)}


def inspect_path(path: str) -> dict[str, Any]:
    """One result object for ``path`` (``chains``, ``lmdb`` or ``error``); never raises for bad input."""
    try:
        p = Path(path)
        if p.is_dir():
            if (p / "data.mdb").is_file():
                return _lmdb_summary(path)
            return {"file": path, "error": f"{path}: directory is not an ATOM3D LMDB (no data.mdb)"}
        return {"file": path, "chains": chain_summaries(read_structure(path))}
    except PaGeoError as err:
        return {"file": path, "error": " ".join(str(err).split())}
    except Exception as err:  # an inspector reports, it never dies on one bad input
        return {"file": path, "error": f"{path}: unexpected {type(err).__name__}: {' '.join(str(err).split())}"}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _print_table(results: list[dict[str, Any]]) -> None:
    rows = [("file", "chain", "length", "backbone", "sequence")]
    for r in results:
        if "error" in r:
            rows.append((r["file"], "-", "-", "-", f"ERROR: {r['error']}"))
        elif "lmdb" in r:
            n = r["lmdb"].get("num_examples", "?")
            rows.append((r["file"], "-", str(n), "-", f"ATOM3D LMDB, {n} examples"))
        else:
            for c in r["chains"]:
                seq = c["sequence"] if len(c["sequence"]) <= _SEQ_SHOWN else c["sequence"][:_SEQ_SHOWN] + "..."
                rows.append((r["file"], c["id"], str(c["length"]), f"{c['backbone_complete']:.3f}", seq))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])


def run(args: argparse.Namespace) -> int:
    """Inspect every path; print JSON or a table on stdout; return 0 if all were read, else 1."""
    results = [inspect_path(str(p)) for p in args.paths]
    if args.json:
        json.dump(results, sys.stdout, indent=1, default=_json_default)
        sys.stdout.write("\n")
    else:
        _print_table(results)
    n_bad = sum("error" in r for r in results)
    if n_bad and not args.json:
        print(f"{n_bad} of {len(results)} input(s) refused", file=sys.stderr)
    return 1 if n_bad else 0
