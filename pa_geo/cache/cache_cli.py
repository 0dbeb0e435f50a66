"""``pa-geo cache verify|repair PATH``: check every entry of an embedding cache, or rebuild it from what is readable.

    pa-geo cache verify cache/            # one row per backbone store: entries readable / corrupt / lost
    pa-geo cache repair cache/esm1b       # keep every readable entry, atomically replace the damaged file

PATH is a cache root (the ``--cache`` directory of ``pa-geo embed``) or one backbone store inside it. ``verify``
exits 1 when any store is damaged; ``repair`` exits 0 once every store was rebuilt.
"""
from __future__ import annotations

import argparse
import json
import sys

from pa_geo.cache.repair import StoreReport, repair_store, store_paths, verify_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``pa-geo cache``'s arguments on ``parser``."""
    parser.add_argument("action", choices=("verify", "repair"),
                        help="verify: count readable / corrupt entries; repair: keep the readable ones")
    parser.add_argument("path", metavar="PATH", help="cache root directory, or one backbone store inside it")
    parser.add_argument("--json", action="store_true", help="print one JSON object per store instead of a table")


def _status(r: StoreReport, action: str) -> str:
    if action == "repair":
        return f"repaired: kept {r.readable}, dropped {r.corrupt + r.lost}" + (f" ({r.problem})" if r.problem else "")
    if r.intact:
        return "ok"
    why = r.problem or "damaged entries"
    return f"DAMAGED ({why}): run `pa-geo cache repair {r.path}`"


def _row(r: StoreReport) -> dict:
    return {"store": str(r.path), "backbone": r.meta.backbone_id if r.meta else None, "recorded": r.recorded,
            "readable": r.readable, "corrupt": r.corrupt, "lost": r.lost, "bad_pages": r.bad_pages,
            "problem": r.problem, "intact": r.intact, "corrupt_keys": r.corrupt_keys}


def run(args: argparse.Namespace) -> int:
    """Verify or repair every store under ``args.path``; returns 1 when ``verify`` found damage, else 0."""
    stores = store_paths(args.path)
    fn = verify_store if args.action == "verify" else repair_store
    reports = [fn(s) for s in stores]
    if args.json:
        json.dump([_row(r) for r in reports], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        header = ("store", "readable", "corrupt", "lost", "status")
        rows = [header] + [(str(r.path), str(r.readable), str(r.corrupt), "?" if r.recorded is None else str(r.lost),
                            _status(r, args.action)) for r in reports]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row[:4], widths)))
                  + "  " + row[4])
    damaged = [r for r in reports if not r.intact]
    return 1 if damaged and args.action == "verify" else 0
