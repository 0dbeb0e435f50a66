"""How much structure backbones' embeddings move with the chain's pose, with the original featurisations (reading
the coordinate origin and, for ProteinMPNN's CA model, global-frame quaternion axes) and with pa_geo's, and what
the CA model's featurisation costs.

    PYTHONPATH=. python tests/backbones/pose_invariance_report.py [--speed-repeats 40]

For real chains (tests/data, StructureDB), prints max |embedding difference| (default layer, all residues) between
the file pose and (a) the chain centred at the origin and rotated, (b) rotated and moved +1000 A on every axis;
"original" is ``CA_ProteinFeatures.forward`` for ``proteinmpnn_ca`` and fair-esm's featurisation
(``pose_invariant=False``) for ``esm_if1`` (a tiny random checkpoint and the full-size architecture with random
weights: no ESM-IF1 weights ship offline). Then ``proteinmpnn_ca`` residues/s on one real ~300-residue chain,
1 thread, both featurisations interleaved.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from pa_geo.backbones import esm_if1 as if1_module
from pa_geo.backbones import get_backbone
from pa_geo.backbones import proteinmpnn as mpnn_module
from pa_geo.backbones.esm_if1_fast import if1_encoder_forward
from pa_geo.io.protein import Protein
from tests.helpers.proteins import read_test_structure, structuredb_chains

STRUCTUREDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "structuredb_sample.npz"


@contextlib.contextmanager
def original_featurisation() -> Iterator[None]:
    """Within the block ``proteinmpnn_ca`` uses the package's ``CA_ProteinFeatures.forward`` and ``esm_if1``
    fair-esm's featurisation."""
    ca, if1 = mpnn_module.ca_features, if1_module.if1_encoder_forward
    mpnn_module.ca_features = lambda f, Ca, mask, ridx, chains: f(Ca, mask, ridx, chains)
    if1_module.if1_encoder_forward = lambda *a, **k: if1_encoder_forward(*a, **{**k, "pose_invariant": False})
    try:
        yield
    finally:
        mpnn_module.ca_features, if1_module.if1_encoder_forward = ca, if1


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def posed(p: Protein, rot: np.ndarray, shift: float, centre: bool) -> Protein:
    bb = p.backbone.astype(np.float64)
    c = np.nanmean(bb[:, 1], 0) if centre else np.zeros(3)
    return dataclasses.replace(p, backbone=((bb - c) @ rot.T + shift).astype(np.float32))


def structuredb(lo: int, hi: int, n: int) -> list[Protein]:
    z = np.load(STRUCTUREDB)
    off = np.concatenate([[0], np.cumsum(z["lengths"])])
    out = []
    for i in [i for i, L in enumerate(z["lengths"]) if lo <= L <= hi][:n]:
        L = int(z["lengths"][i])
        breaks = np.zeros(L, bool)
        breaks[0] = True
        out.append(Protein(str(z["ids"][i]), str(z["seqs"][i]), np.full(L, "A", dtype=object),
                           np.arange(L, dtype=np.int64) + int(z["start_resnum"][i]), np.full(L, "", dtype=object),
                           z["coords"][off[i]:off[i + 1], :4].astype(np.float32), breaks))
    return out


def max_diff(bb, p: Protein, q: Protein) -> float:
    a, b = bb.embed([p])[0], bb.embed([q])[0]
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def pose_table(backbones: dict, proteins: list[Protein]) -> None:
    print(f"{'backbone':22s} {'protein':30s} {'L':>4s}  {'centred+rotated':>22s}  {'rotated, +1000 A':>22s}  "
          f"max|emb|")
    print(f"{'':22s} {'':30s} {'':>4s}  {'original':>10s} {'pa_geo':>11s}  {'original':>10s} {'pa_geo':>11s}")
    for name, bb in backbones.items():
        for p in proteins:
            centred, far = posed(p, rotation(1), 0.0, True), posed(p, rotation(2), 1000.0, False)
            with original_featurisation():
                before = (max_diff(bb, p, centred), max_diff(bb, p, far))
            after = (max_diff(bb, p, centred), max_diff(bb, p, far))
            scale = max(float(t.abs().max()) for t in bb.embed([p])[0].values())
            print(f"{name:22s} {p.id[:30]:30s} {len(p):4d}  {before[0]:10.2e} {after[0]:11.2e}  {before[1]:10.2e} "
                  f"{after[1]:11.2e}  {scale:.2f}", flush=True)


def speed(repeats: int) -> None:
    torch.set_num_threads(1)
    p = structuredb(295, 305, 1)[0]
    bb = get_backbone("proteinmpnn_ca")
    times: dict[str, list[float]] = {"original": [], "pa_geo": []}
    bb.embed([p])
    for _ in range(repeats):
        for name in times:
            with original_featurisation() if name == "original" else contextlib.nullcontext():
                t = time.perf_counter()
                bb.embed([p])
                times[name].append(time.perf_counter() - t)
    print(f"\nproteinmpnn_ca on {p.id} (L={len(p)}), 1 thread, {repeats} interleaved runs each:")
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        print(f"  {name:9s} median {med * 1e3:6.1f} ms = {len(p) / med:5.0f} residues/s; "
              f"fastest {best * 1e3:6.1f} ms = {len(p) / best:5.0f} residues/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed-repeats", type=int, default=40)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from tests.helpers.esm_models import full_esm_if1, make_tiny_esm_if1

    tmp = Path(tempfile.mkdtemp())
    make_tiny_esm_if1(tmp / "tiny.pt")
    model, _ = full_esm_if1()
    torch.save({"args": model.args, "model": model.state_dict()}, tmp / "full.pt")
    backbones = {"proteinmpnn_ca": get_backbone("proteinmpnn_ca"), "proteinmpnn": get_backbone("proteinmpnn"),
                 "esm_if1 (tiny, random)": get_backbone("esm_if1", model=str(tmp / "tiny.pt")),
                 "esm_if1 (full, random)": get_backbone("esm_if1", model=str(tmp / "full.pt"))}
    proteins = (structuredb_chains() + [read_test_structure("2hhb.pdb.gz").select_chains(["A", "B"]),
                                        read_test_structure("backbones_3a4rA_gap.pdb.gz"),
                                        read_test_structure("backbones_1mr1D_missing_atoms.pdb.gz")]
                + structuredb(295, 305, 2))
    pose_table(backbones, proteins)
    speed(args.speed_repeats)


if __name__ == "__main__":
    main()
