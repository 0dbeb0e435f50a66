"""Training a small head on cached frozen-backbone embeddings vs recomputing the backbone every step.

    .venv/bin/python benchmarks/cache_vs_recompute.py [--n 16] [--cached-epochs 20] [--threads 2]

Same run, same data (real StructureDB chains; target = the chain's DSSP helix fraction), same head, same batches:

- ``recompute`` (ProteinWorkshop's way): each step runs the frozen ESM-1b-size backbone (random weights, full size)
  on the batch under ``no_grad``, then the head;
- ``cache``: ``pa-geo embed`` once (:func:`pa_geo.cache.embed_proteins`), then every step reads the embeddings
  through the dataset transform :class:`pa_geo.datasets.embedded.AttachEmbeddings` (LMDB, read-only).

Reports seconds per epoch for both, their ratio, the one-off embedding cost, the total cost after E epochs
(projected from the measured per-epoch times) and the first-epoch loss of both paths (they must agree: fp16 cache
vs fp32 recompute). Writes ``benchmarks/results/cache_vs_recompute.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import global_mean_pool

from embed import DATA, RESULTS, build_esm, injected, real_chains  # the sibling benchmark (run as a script)

from pa_geo.cache.runner import embed_proteins
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource, stamp_digests
from pa_geo.graphs.schema import embedding_field


def helix_fraction(ids: list[str]) -> dict[str, float]:
    """Real labels: fraction of residues in DSSP H/G/I per chain."""
    d = np.load(DATA)
    lookup = {str(i): str(s) for i, s in zip(d["ids"], d["dssp"])}
    return {i: sum(c in "HGI" for c in lookup[i]) / len(lookup[i]) for i in ids}


def make_head(dim: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(1)
    head = torch.nn.Sequential(torch.nn.Linear(dim, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    return head, torch.optim.Adam(head.parameters(), lr=1e-3)


def step(head, opt, x: torch.Tensor, batch: torch.Tensor, y: torch.Tensor) -> float:
    """One optimiser step on mean-pooled residue embeddings ``x [N, D]``; returns the loss."""
    pred = head(global_mean_pool(x, batch)).squeeze(-1)
    loss = torch.nn.functional.mse_loss(pred, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="proteins")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--cached-epochs", type=int, default=20)
    ap.add_argument("--recompute-epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the recompute path")
    ap.add_argument("--cache-threads", type=int, default=1,
                    help="torch threads of the cached path (a head this small only loses time to thread barriers)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from pa_geo.backbones import esm_sequence

    proteins = real_chains(args.n, 100, 150, seed=2)
    by_id = {p.id: p for p in proteins}
    labels = helix_fraction(list(by_id))
    graphs = [Data(num_nodes=len(p), protein_id=p.id, y=torch.tensor([labels[p.id]])) for p in proteins]
    net, alphabet = build_esm("esm1b")
    with injected(esm_sequence, net, alphabet, "esm1b"):
        bb = esm_sequence.ESMSequenceBackbone()
    layer = bb.layers[-1]
    dim = bb.dims[layer]

    with torch.no_grad():  # warm-up, so neither path pays first-call costs
        bb.embed([proteins[0]])

    # recompute: the frozen backbone inside every training step
    head, opt = make_head(dim)
    rec_losses, t = [], time.perf_counter()
    for _ in range(args.recompute_epochs):
        for batch in DataLoader(graphs, batch_size=args.batch_size, shuffle=False):
            with torch.no_grad():
                outs = bb.embed([by_id[i] for i in batch.protein_id])
            x = torch.cat([o[layer] for o in outs])
            rec_losses.append(step(head, opt, x, batch.batch, batch.y))
    t_rec = (time.perf_counter() - t) / args.recompute_epochs

    # cache: embed once, then read through the dataset transform
    root = Path(tempfile.mkdtemp(prefix="pa_geo_cvr_"))
    t = time.perf_counter()
    summary = embed_proteins(bb, proteins, root, progress=False)
    t_embed = time.perf_counter() - t
    field = embedding_field("esm1b", layer)
    tf = AttachEmbeddings([EmbeddingSource(root, "esm1b", [layer])])
    stamped = [stamp_digests(g.clone(), by_id[g.protein_id]) for g in graphs]  # as the example store holds them
    torch.set_num_threads(args.cache_threads)
    head, opt = make_head(dim)
    cache_losses, t = [], time.perf_counter()
    for _ in range(args.cached_epochs):
        for batch in DataLoader([tf(g.clone()) for g in stamped], batch_size=args.batch_size, shuffle=False):
            cache_losses.append(step(head, opt, batch[field].float(), batch.batch, batch.y))  # stored fp16
    t_cache = (time.perf_counter() - t) / args.cached_epochs
    steps = len(rec_losses) // args.recompute_epochs
    loss_gap = max(abs(a - b) for a, b in zip(rec_losses[:steps], cache_losses[:steps]))

    ratio = t_rec / t_cache
    scaling = []
    for e in (1, 5, 10, 50, 100):
        rec, cache = e * t_rec, t_embed + e * t_cache
        scaling.append({"epochs": e, "recompute_s": rec, "cache_s": cache, "speedup": rec / cache})
    R = sum(len(p) for p in proteins)
    print(f"\ncache vs recompute: {args.n} real chains ({R} residues), ESM-1b size (random weights), "
          f"head {dim}->128->1, batch {args.batch_size}, CPU threads {args.threads} (recompute, embed) / "
          f"{args.cache_threads} (cached training), "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"  seconds / epoch   recompute {t_rec:8.3f}   cache {t_cache:8.4f}   ratio {ratio:8.0f}x")
    print(f"  one-off embed     {t_embed:.2f} s ({summary.embedded} proteins, {summary.residues_per_s:.0f} res/s)")
    print(f"  epoch-1 loss gap  {loss_gap:.2e} (max |loss_recompute - loss_cache| over {steps} steps)")
    print(f"  {'epochs':>6} {'recompute s':>12} {'cache s':>9} {'speedup':>8}   (projected from per-epoch times)")
    for s in scaling:
        print(f"  {s['epochs']:>6} {s['recompute_s']:>12.1f} {s['cache_s']:>9.1f} {s['speedup']:>7.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"argv": sys.argv, "proteins": args.n, "residues": R, "threads": args.threads,
           "cache_threads": args.cache_threads, "loadavg": os.getloadavg(),
           "recompute_s_per_epoch": t_rec, "cache_s_per_epoch": t_cache,
           "ratio_per_epoch": ratio, "embed_once_s": t_embed, "epoch1_loss_gap": loss_gap, "scaling": scaling,
           "recompute_epochs_measured": args.recompute_epochs, "cached_epochs_measured": args.cached_epochs}
    path = RESULTS / "cache_vs_recompute.json"
    path.with_suffix(".json.tmp").write_text(json.dumps(out, indent=2))
    os.replace(path.with_suffix(".json.tmp"), path)
    print(f"wrote {RESULTS / 'cache_vs_recompute.json'}")


if __name__ == "__main__":
    main()
