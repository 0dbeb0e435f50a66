"""Structure-reader fuzz: 10,000 seeded mutations of real PDB / mmCIF files through ``read_structure``.

Mutations (``tests/helpers/structure_fuzz.py``): truncation, byte flips, line duplication / deletion, stray MODEL /
ENDMDL records, huge and NaN coordinates, over the real files in ``tests/data``. Outcomes: parsed-same,
parsed-changed, refused (one-line StructureError), other-exception (a bug). Also counts mutations that kept every
atom record yet changed the residues (must be 0). Prints a kind x outcome table and writes
``benchmarks/results/fuzz.json``.

    .venv/bin/python benchmarks/fuzz.py [--n 10000] [--seed 0] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import checkout  # noqa: F401 - the sibling module: makes this checkout's tests.helpers importable
from tests.helpers.structure_fuzz import KINDS, OUTCOMES, load_seeds, run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"


def _chunk(args: tuple[int, int]) -> list[tuple]:
    n, seed = args
    with tempfile.TemporaryDirectory(prefix="pa_geo-fuzz-") as tmp:
        return list(run(load_seeds(), n, seed, Path(tmp)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="mutations in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes (each takes an equal share, own seed)")
    args = ap.parse_args()
    shares = [(args.n // args.workers + (k < args.n % args.workers), args.seed * 1000 + k)
              for k in range(args.workers)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for part in pool.map(_chunk, shares) for r in part]
    seconds = time.perf_counter() - t0

    table = Counter((kind, result) for _, kind, _, result, _, _ in rows)
    broken = [r for r in rows if r[3] == "other-exception"]
    kept_changed = [r for r in rows if r[2] and r[3].startswith("parsed") and not r[5]]
    kept = sum(r[2] for r in rows)
    width = max(len(k) for k in KINDS)
    print(f"{'mutation':<{width}}  " + "  ".join(f"{o:>15}" for o in OUTCOMES) + f"  {'total':>6}")
    for kind in KINDS:
        counts = [table[kind, o] for o in OUTCOMES]
        print(f"{kind:<{width}}  " + "  ".join(f"{c:>15}" for c in counts) + f"  {sum(counts):>6}")
    totals = [sum(table[k, o] for k in KINDS) for o in OUTCOMES]
    print(f"{'all':<{width}}  " + "  ".join(f"{c:>15}" for c in totals) + f"  {len(rows):>6}")
    print(f"\n{len(rows)} mutations of {len({r[0] for r in rows})} real files in {seconds:.1f} s "
          f"({len(rows) / seconds:.0f}/s, {args.workers} workers)")
    print(f"kept every atom record: {kept}; of those parsed with other residues: {len(kept_changed)} (must be 0)")
    print(f"other exceptions: {len(broken)} (must be 0)")
    for r in (broken + kept_changed)[:10]:
        print("  ", r[:5])

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "mutations": len(rows), "seed": args.seed, "workers": args.workers, "seconds": round(seconds, 2),
        "files": sorted({r[0] for r in rows}),
        "table": {kind: {o: table[kind, o] for o in OUTCOMES} for kind in KINDS},
        "kept_all_atom_records": kept, "kept_but_residues_changed": len(kept_changed),
        "other_exceptions": len(broken), "examples": [list(r[:5]) for r in (broken + kept_changed)[:20]],
    }, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
