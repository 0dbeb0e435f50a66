"""Embedding throughput: pa_geo's batched runner vs a naive loop, fair-esm's extract.py batching and the FLOP floor.

    .venv/bin/python benchmarks/embed.py [--models esm2_35m esm1b esm_if1] [--n 8] [--threads 2]

Models are built at full size with random weights (throughput does not depend on the weight values) and wrapped in
pa_geo's own backbones. Inputs are real chains from ``../shared/data/structuredb_sample.npz``. Per model:

- ``naive``: ``backbone.embed([p])`` one protein at a time (no cache);
- ``fair-esm``: a faithful re-implementation of fair-esm's ``scripts/extract.py`` loop (``FastaBatchedDataset`` +
  ``get_batch_indices(toks_per_batch, extra_toks_per_seq=1)`` + batch converter + ``model(toks, repr_layers)`` +
  per-sequence ``clone()`` + ``torch.save`` per sequence), same ``toks_per_batch``; ESM-IF1: fair-esm's per-chain
  ``get_encoder_output`` loop;
- ``pa_geo``: :func:`pa_geo.cache.embed_proteins` into a fresh LMDB cache (encoding + commits included);
- FLOP floor: ``2 x (matmul params) x residues / (matmul rate measured in this run)``, reported as a % of each run.

Each method runs ``--repeats`` times, interleaved, and its best time is kept (the box is shared: see load avg).

Prints a table and writes ``benchmarks/results/embed.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "structuredb_sample.npz"
RESULTS = ROOT / "benchmarks" / "results"

from pa_geo.io.protein import Protein  # noqa: E402


# -- inputs and models --------------------------------------------------------------------------------------------
def real_chains(n: int, lo: int, hi: int, seed: int = 0) -> list[Protein]:
    """``n`` real StructureDB chains with ``lo <= L <= hi`` (backbone N, CA, C, O from the file)."""
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: the benchmark needs the real StructureDB sample")
    d = np.load(DATA)
    offsets = np.concatenate([[0], np.cumsum(d["lengths"])])
    pick = [i for i in np.random.default_rng(seed).permutation(len(d["ids"])) if lo <= d["lengths"][i] <= hi][:n]
    out = []
    for i in pick:
        L, seq = int(d["lengths"][i]), str(d["seqs"][i])
        bb = d["coords"][offsets[i]:offsets[i + 1], :4].astype(np.float32)
        breaks = np.zeros(L, bool)
        breaks[0] = True
        out.append(Protein(str(d["ids"][i]), seq, np.full(L, "A", dtype=object),
                           np.arange(L, dtype=np.int64) + int(d["start_resnum"][i]), np.full(L, "", dtype=object),
                           bb, breaks))
    return out


def build_esm(kind: str) -> tuple[torch.nn.Module, object]:
    """A randomly initialised fair-esm model: ``esm2_35m`` (12 x 480) or ``esm1b`` (33 x 1280, 652 M params)."""
    import esm
    from esm.model.esm1 import ProteinBertModel
    from esm.model.esm2 import ESM2

    torch.manual_seed(0)
    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    if kind == "esm2_35m":
        return ESM2(num_layers=12, embed_dim=480, attention_heads=20, alphabet=alphabet).eval(), alphabet
    args = Namespace(arch="roberta_large", layers=33, embed_dim=1280, ffn_embed_dim=5120, attention_heads=20,
                     max_positions=1024, emb_layer_norm_before=False, token_dropout=True)
    return ProteinBertModel(args, alphabet).eval(), alphabet


def build_esm_if1() -> tuple[torch.nn.Module, object]:
    """ESM-IF1 at full size (``esm_if1_gvp4_t16_142M_UR50``'s arguments), random weights."""
    import esm

    from pa_geo.backbones._esm_compat import import_inverse_folding

    inv = import_inverse_folding()
    torch.manual_seed(0)
    args = Namespace(arch="vqvae_invariant_gvp", encoder_embed_dim=512, decoder_embed_dim=512, encoder_layers=8,
                     decoder_layers=8, encoder_attention_heads=8, decoder_attention_heads=8,
                     encoder_ffn_embed_dim=2048, decoder_ffn_embed_dim=2048, dropout=0.1, attention_dropout=0.1,
                     gvp_node_hidden_dim_scalar=1024, gvp_node_hidden_dim_vector=256, gvp_edge_hidden_dim_scalar=32,
                     gvp_edge_hidden_dim_vector=1, gvp_num_encoder_layers=4, gvp_top_k_neighbors=30, gvp_dropout=0.1)
    alphabet = esm.Alphabet.from_architecture("invariant_gvp")
    return inv.gvp_transformer.GVPTransformerModel(args, alphabet).eval(), alphabet


@contextlib.contextmanager
def injected(module, net: torch.nn.Module, alphabet: object, tag: str):
    """Make a pa_geo ESM backbone module load ``net`` instead of a checkpoint file (random weights, no disk)."""
    from pa_geo.backbones import _weights  # WeightFileBackbone fingerprints the file through _weights.file_digest

    saved = module.resolve_esm_checkpoint, module.load_esm_model, _weights.file_digest
    module.resolve_esm_checkpoint = lambda model, name: Path(f"/random/{tag}.pt")
    module.load_esm_model = lambda path: (net, alphabet)
    _weights.file_digest = lambda path: f"random-{tag}"
    try:
        yield
    finally:
        module.resolve_esm_checkpoint, module.load_esm_model, _weights.file_digest = saved


def matmul_params(net: torch.nn.Module) -> int:
    """Parameters that take part in matrix products per token (weights of every ``nn.Linear``)."""
    return sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Linear))


def matmul_rate(rows: int, dim: int, reps: int = 5) -> float:
    """Best float32 GEMM rate (FLOP/s) of ``[rows, dim] @ [dim, 4 dim]`` here, now (the FFN's shape)."""
    a, b = torch.randn(rows, dim), torch.randn(dim, 4 * dim)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * rows * dim * 4 * dim / best


def best_of(repeats: int, runs: dict[str, Callable[[int], object]]) -> dict[str, float]:
    """Best wall time of each run over ``repeats`` rounds, the runs interleaved within a round (so a burst of
    load from other processes on a shared machine hits every method alike); ``run(r)`` gets the round index."""
    best = {k: float("inf") for k in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            with torch.inference_mode():
                fn(r)
            best[name] = min(best[name], time.perf_counter() - t)
    return best


# -- the compared loops -------------------------------------------------------------------------------------------
def fair_esm_extract(net, alphabet, proteins: list[Protein], toks_per_batch: int, layers: list[int], out_dir: Path):
    """fair-esm ``scripts/extract.py`` (``--include per_tok``, CPU), minus argument parsing and prints."""
    from esm import FastaBatchedDataset

    dataset = FastaBatchedDataset([p.id for p in proteins], [p.sequence for p in proteins])
    batches = dataset.get_batch_indices(toks_per_batch, extra_toks_per_seq=1)
    loader = torch.utils.data.DataLoader(dataset, collate_fn=alphabet.get_batch_converter(1022),
                                         batch_sampler=batches)  # extract.py: num_workers=2 (slower on 2 cores)
    for labels, strs, toks in loader:
        out = net(toks, repr_layers=layers, return_contacts=False)
        reps = {layer: t.to("cpu") for layer, t in out["representations"].items()}
        for i, label in enumerate(labels):
            n = min(1022, len(strs[i]))
            torch.save({"label": label, "representations": {k: t[i, 1:n + 1].clone() for k, t in reps.items()}},
                       out_dir / f"{label}.pt")


def fair_esm_if1_loop(net, alphabet, proteins: list[Protein]) -> None:
    """fair-esm's documented ESM-IF1 usage: ``get_encoder_output`` once per chain."""
    from pa_geo.backbones._esm_compat import import_inverse_folding

    util = import_inverse_folding().util
    for p in proteins:
        util.get_encoder_output(net, alphabet, torch.from_numpy(p.backbone[:, :3]))


# -- one model ----------------------------------------------------------------------------------------------------
def bench_sequence(kind: str, proteins: list[Protein], batch_tokens: int, repeats: int) -> dict:
    from pa_geo.backbones import esm_sequence
    from pa_geo.cache.runner import embed_proteins

    net, alphabet = build_esm(kind)
    with injected(esm_sequence, net, alphabet, kind):
        bb = esm_sequence.ESMSequenceBackbone()
    layers = list(bb.layers)
    R = sum(len(p) for p in proteins)
    with torch.inference_mode():
        bb.embed([Protein.from_sequence("warm", "MKTAYIAKQR" * 3)])
    tmp = Path(tempfile.mkdtemp(prefix="pa_geo_bench_"))
    times = best_of(repeats, {
        "naive": lambda r: [bb.embed([p]) for p in proteins],
        "fair-esm": lambda r: fair_esm_extract(net, alphabet, proteins, batch_tokens, layers, tmp),
        "pa_geo": lambda r: embed_proteins(bb, proteins, tmp / f"cache{r}", batch_tokens=batch_tokens,
                                           progress=False)})
    dim = int(net.embed_tokens.embedding_dim)
    rate = matmul_rate(min(R + 2 * len(proteins), batch_tokens), dim)
    floor = 2.0 * matmul_params(net) * R / rate
    return {"model": kind, "params": sum(p.numel() for p in net.parameters()), "matmul_params": matmul_params(net),
            "proteins": len(proteins), "residues": R, "batch_tokens": batch_tokens, "layers": layers,
            "seconds": times, "residues_per_s": {k: R / v for k, v in times.items()},
            "matmul_gflops": rate / 1e9, "floor_seconds": floor,
            "pct_of_floor": {k: 100.0 * floor / v for k, v in times.items()},
            "speedup_vs_naive": times["naive"] / times["pa_geo"],
            "speedup_vs_fair_esm": times["fair-esm"] / times["pa_geo"]}


def bench_if1(proteins: list[Protein], batch_tokens: int, repeats: int) -> dict:
    from pa_geo.backbones import esm_if1
    from pa_geo.cache.runner import embed_proteins

    net, alphabet = build_esm_if1()
    with injected(esm_if1, net, alphabet, "esm_if1"):
        bb = esm_if1.ESMIF1Backbone()
    R = sum(len(p) for p in proteins)
    tmp = Path(tempfile.mkdtemp(prefix="pa_geo_bench_"))
    with torch.inference_mode():
        bb.embed(proteins[:1])
    times = best_of(repeats, {
        "naive": lambda r: [bb.embed([p]) for p in proteins],
        "fair-esm": lambda r: fair_esm_if1_loop(net, alphabet, proteins),
        "pa_geo": lambda r: embed_proteins(bb, proteins, tmp / f"cache{r}", batch_tokens=batch_tokens,
                                           progress=False)})
    return {"model": "esm_if1", "params": sum(p.numel() for p in net.parameters()), "proteins": len(proteins),
            "residues": R, "batch_tokens": batch_tokens, "seconds": times,
            "residues_per_s": {k: R / v for k, v in times.items()},
            "speedup_vs_naive": times["naive"] / times["pa_geo"],
            "speedup_vs_fair_esm": times["fair-esm"] / times["pa_geo"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["esm2_35m", "esm1b", "esm_if1"])
    ap.add_argument("--n", type=int, default=8, help="sequences per model (ESM-IF1: half as many)")
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best time of each is kept")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for m in args.models:
        t0 = time.perf_counter()
        if m == "esm_if1":
            rows.append(bench_if1(real_chains(max(2, args.n // 2), 120, 180, seed=1), args.batch_tokens,
                                  args.repeats))
        else:
            rows.append(bench_sequence(m, real_chains(args.n, 280, 320), args.batch_tokens, args.repeats))
        rows[-1].update(repeats=args.repeats, wall_s=time.perf_counter() - t0, loadavg=os.getloadavg(),
                        threads=args.threads, when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        print(f"[{m} done in {rows[-1]['wall_s']:.0f} s]", file=sys.stderr)
    print(f"\nembedding throughput, residues/s (CPU, {args.threads} threads, load avg {os.getloadavg()[0]:.1f})")
    print(f"{'model':<10} {'N x L':>9} {'naive':>8} {'fair-esm':>9} {'pa_geo':>8} {'vs naive':>9} "
          f"{'vs fair-esm':>12} {'% FLOP floor (pa_geo / fair-esm)':>34}")
    for r in rows:
        rps = r["residues_per_s"]
        pct = r.get("pct_of_floor")
        print(f"{r['model']:<10} {r['proteins']:>3} x {r['residues'] // r['proteins']:<4}"
              f"{rps.get('naive', float('nan')):>8.1f} {rps['fair-esm']:>9.1f} {rps['pa_geo']:>8.1f} "
              f"{r.get('speedup_vs_naive', float('nan')):>8.2f}x {r['speedup_vs_fair_esm']:>11.2f}x "
              + (f"{pct['pa_geo']:>20.0f}% / {pct['fair-esm']:.0f}%" if pct else f"{'-':>22}"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "embed.json"
    previous = json.loads(path.read_text()).get("results", []) if path.exists() else []
    merged = {r["model"]: r for r in previous}  # a run of some models keeps the others' last results
    merged.update({r["model"]: r for r in rows})
    out = {"argv": sys.argv, "torch": torch.__version__, "machine": platform.machine(),
           "results": list(merged.values())}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)
    print(f"wrote {RESULTS / 'embed.json'}")


if __name__ == "__main__":
    main()
