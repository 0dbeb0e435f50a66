"""``pa-geo predict --pretrained``: chains/s on 300-residue chains, cold and warm embedding cache, with the share of
each stage.

Real StructureDB chains of 295-305 residues (the first ``--chains`` by id of the sample in ``../shared/data``, else
of the shipped ``data/structuredb_subset.npz``) are written as PDB files (backbone N, CA, C, O). Each shipped model
then predicts them through the path ``pa-geo predict --pretrained`` runs (``predict_from_checkpoint`` on the
package's checkpoint, in this process so the stages have their own clocks): once with an empty embedding cache
(cold: NEAR and ProteinMPNN run on every chain) and once more with the cache that run filled (warm). Stages
(``PredictSummary.seconds``): load (checkpoint + encoders + fingerprint check), read (structure files), embed,
graph (residue graphs and geometry into the example store), model (batches through the model), write (rows + CSV).
Python start-up and imports are not counted. Prints a table and writes ``benchmarks/results/pretrained_predict.json``.

    .venv/bin/python benchmarks/pretrained_predict.py [--chains 20] [--threads 2] [--models ss8-rsa ss8-rsa-ca]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from custom_table import write_backbone_pdb
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.pretrained import MODELS, get_model
from pa_geo.train.notices import silence_known_notices
from pa_geo.train.predict import predict_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pretrained_predict.json"
SOURCES = (ROOT.parent / "shared" / "data" / "structuredb_sample.npz", ROOT / "data" / "structuredb_subset.npz")
STAGES = ("load", "read", "embed", "graph", "model", "write")


def write_chains(folder: Path, n: int, lo: int = 295, hi: int = 305) -> tuple[list[Path], int, str]:
    """``n`` real chains of ``lo``..``hi`` residues as PDB files in ``folder``; (paths, residues, source name)."""
    source = next(p for p in SOURCES if p.is_file())
    records = sorted((r for r in load_structuredb(source) if lo <= len(r.protein) <= hi), key=lambda r: r.protein.id)
    chosen = [r.protein for r in records[:n]]
    paths = []
    for p in chosen:
        paths.append(folder / f"{p.id}.pdb")
        write_backbone_pdb(p, paths[-1])
    return paths, sum(len(p) for p in chosen), source.name


def measure(name: str, paths: list[Path], cache: Path, out: Path) -> dict[str, object]:
    """One ``--pretrained name`` run: wall seconds, chains/s, seconds and share per stage."""
    start = time.perf_counter()
    summary = predict_from_checkpoint(get_model(name).require(), paths, out, cache=str(cache), progress=False)
    total = time.perf_counter() - start
    seconds = {k: round(summary.seconds.get(k, 0.0), 3) for k in STAGES}
    return {"seconds": round(total, 2), "chains_per_s": round(len(paths) / total, 3), "rows": summary.rows,
            "refused": len(summary.refused), "stage_seconds": seconds,
            "stage_share": {k: round(v / total, 3) for k, v in seconds.items()}}


def table(runs: list[dict[str, object]]) -> str:
    head = ["model", "cache", "chains", "residues", "seconds", "chains/s", *[f"{s} %" for s in STAGES]]
    rows = [[r["model"], r["cache"], str(r["chains"]), f"{r['residues']:,}", f"{r['seconds']:.1f}",
             f"{r['chains_per_s']:.2f}", *[f"{100 * r['stage_share'][s]:.0f}" for s in STAGES]] for r in runs]
    width = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(head, width)))]
    lines.append("  ".join("-" * w for w in width))
    for row in rows:
        lines.append("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, width))))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the 2-core target)")
    parser.add_argument("--models", nargs="+", default=[MODELS.get(n).name for n in MODELS.names()])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    silence_known_notices()  # as the pa-geo program does
    missing = [m for m in args.models if not get_model(m).installed]
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/train_pretrained.py --ship writes them)", file=sys.stderr)
        return 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="pa_geo_bench_pretrained_") as tmp:
        work = Path(tmp)
        paths, residues, source = write_chains(work, args.chains)
        for name in args.models:
            cache = work / f"cache_{name}"
            for state in ("cold", "warm"):
                run = measure(name, paths, cache, work / f"{name}_{state}.csv")
                runs.append({"model": name, "cache": state, "chains": len(paths), "residues": residues, **run})
                print(f"{name} {state}: {run['seconds']:.1f} s, {run['chains_per_s']:.2f} chains/s", flush=True)
    text = table(runs)
    print(text)
    result = {"source": source, "chain_lengths": [295, 305], "runs": runs, "torch_threads": torch.get_num_threads(),
              "cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "platform": platform.platform(),
              "device": "cuda" if torch.cuda.is_available() else "cpu", "table": text}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
