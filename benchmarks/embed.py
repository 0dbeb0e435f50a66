"""Embedding throughput: pa_geo's runner vs fair-esm's own batching vs a naive one-protein-at-a-time loop.

    .venv/bin/python benchmarks/embed.py [--device cpu|cuda] [--threads 2] [--quick] [--sweep]

Full-size architectures with random weights (throughput does not depend on the weight values): ESM-2 35M,
ESM-1b (650M), ESM-IF1 (142M), and the Hugging Face ``EsmModel`` made from the same ESM-2 35M weights. Inputs are
real chains from StructureDB: (a) 8 chains of 280-320 residues, (b) 64 chains drawn at random (the data's real
length distribution). Per model and input set, in one run:

- ``naive``: fair-esm's model called on one protein at a time (ESM: ``model(tokens, repr_layers)``;
  ESM-IF1: ``util.get_encoder_output`` per chain; HF: the model card's tokenizer + ``model(...)`` per protein);
- ``fair-esm``: fair-esm's batching: ``scripts/extract.py`` (``FastaBatchedDataset.get_batch_indices(4096)``,
  batch converter truncating at 1022, ``model(...)``, per-sequence ``clone()`` + ``torch.save``); ESM-IF1:
  ``CoordBatchConverter`` batches of the same token budget through ``model.encoder``;
- ``pa_geo``: :func:`pa_geo.cache.embed_proteins` into a fresh LMDB cache at the backbone's default batch budget
  for the device (featurising, commits and fp16 encoding included).

Residues/s count each method's output rows (fair-esm truncates chains > 1022 residues; pa_geo windows them).
``max |diff|`` compares pa_geo's per-residue output with fair-esm's own forward on set (a), float32 on CPU (on
CUDA pa_geo runs in bfloat16 autocast, the reference in float32). ``--sweep`` adds pa_geo at several batch
budgets; ``--device cuda`` adds peak memory at L = 1000 / 2000. Methods run interleaved, ``--repeats`` rounds,
best time kept (the load average is recorded: the machine may be shared). Prints tables and writes
``benchmarks/results/embed.json`` (``embed_quick.json`` with ``--quick``).
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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import checkout  # noqa: F401 - the sibling module: makes this checkout's tests.helpers importable
from pa_geo.io.protein import Protein
from tests.helpers.esm_models import full_esm1b, full_esm_if1, materialize

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA_CANDIDATES = [ROOT.parent / "shared" / "data" / "structuredb_sample.npz", ROOT / "data" / "structuredb_subset.npz"]


# -- inputs and models --------------------------------------------------------------------------------------------
DATA = next((p for p in DATA_CANDIDATES if p.exists()), DATA_CANDIDATES[-1])


def chains(n: int, lo: int = 0, hi: int = 10**9, seed: int = 0) -> tuple[list[Protein], str]:
    """``n`` real StructureDB chains with ``lo <= L <= hi`` drawn at random (N, CA, C, O from the file)."""
    path = DATA
    if not path.exists():
        raise SystemExit("no StructureDB chains found (" + ", ".join(map(str, DATA_CANDIDATES)) + ")")
    d = np.load(path)
    off = np.concatenate([[0], np.cumsum(d["lengths"])])
    pick = [i for i in np.random.default_rng(seed).permutation(len(d["ids"])) if lo <= d["lengths"][i] <= hi][:n]
    out = []
    for i in pick:
        L = int(d["lengths"][i])
        breaks = np.zeros(L, bool)
        breaks[0] = True
        out.append(Protein(str(d["ids"][i]), str(d["seqs"][i]), np.full(L, "A", dtype=object),
                           np.arange(L, dtype=np.int64) + int(d["start_resnum"][i]), np.full(L, "", dtype=object),
                           d["coords"][off[i]:off[i + 1], :4].astype(np.float32), breaks))
    return out, path.name


def esm2_35m():
    import esm
    from esm.model.esm2 import ESM2

    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    with torch.device("meta"):
        model = ESM2(num_layers=12, embed_dim=480, attention_heads=20, alphabet=alphabet)
    return materialize(model), alphabet


def real_chains(n: int, lo: int, hi: int, seed: int = 0) -> list[Protein]:
    """:func:`chains` without the file name (used by benchmarks/cache_vs_recompute.py)."""
    return chains(n, lo, hi, seed)[0]


def build_esm(kind: str):
    """``(model, alphabet)``: ``esm2_35m`` or ``esm1b`` at full size, random weights."""
    return esm2_35m() if kind == "esm2_35m" else full_esm1b()


@contextlib.contextmanager
def injected(module, net, alphabet, tag: str):
    """Make a pa_geo fair-esm backbone module load ``net`` instead of a checkpoint file (random weights)."""
    from pa_geo.backbones import _weights

    saved = module.resolve_esm_checkpoint, module.load_esm_model, _weights.file_digest
    module.resolve_esm_checkpoint = lambda model, name: Path(f"/random/{tag}.pt")
    module.load_esm_model = lambda path: (net, alphabet)
    _weights.file_digest = lambda path: f"random-{tag}"
    try:
        yield
    finally:
        module.resolve_esm_checkpoint, module.load_esm_model, _weights.file_digest = saved


def pa_geo_backbone(kind: str, net, alphabet, device: str, hf_dir: Path | None = None):
    """pa_geo's backbone for ``kind`` around ``net`` (the HF one from the converted directory ``hf_dir``)."""
    from pa_geo.backbones import esm_if1, esm_sequence, get_backbone

    if kind == "hf_esm2":
        return get_backbone("hf", model=str(hf_dir)).to(device)
    module = esm_if1 if kind == "esm_if1" else esm_sequence
    with injected(module, net, alphabet, kind):
        return (module.ESMIF1Backbone() if kind == "esm_if1" else module.ESMSequenceBackbone()).to(device)


# -- the compared loops -------------------------------------------------------------------------------------------
def esm_naive(net, alphabet, proteins, layer: int, device: str) -> dict[str, torch.Tensor]:
    conv = alphabet.get_batch_converter(1022)
    out = {}
    for p in proteins:
        _, _, toks = conv([(p.id, p.sequence)])
        rep = net(toks.to(device), repr_layers=[layer])["representations"][layer]
        out[p.id] = rep[0, 1:-1].float().cpu()
    return out


def esm_extract(net, alphabet, proteins, layer: int, device: str, out_dir: Path) -> None:
    """fair-esm ``scripts/extract.py --include per_tok`` minus argument parsing and prints."""
    from esm import FastaBatchedDataset

    dataset = FastaBatchedDataset([p.id for p in proteins], [p.sequence for p in proteins])
    batches = dataset.get_batch_indices(4096, extra_toks_per_seq=1)
    loader = torch.utils.data.DataLoader(dataset, collate_fn=alphabet.get_batch_converter(1022),
                                         batch_sampler=batches)
    for labels, strs, toks in loader:
        reps = net(toks.to(device), repr_layers=[layer])["representations"]
        reps = {k: t.to("cpu") for k, t in reps.items()}
        for i, label in enumerate(labels):
            n = min(1022, len(strs[i]))
            torch.save({"label": label, "representations": {k: t[i, 1:n + 1].clone() for k, t in reps.items()}},
                       out_dir / f"{label}.pt")


def if1_naive(net, alphabet, proteins, device: str) -> dict[str, torch.Tensor]:
    from pa_geo.backbones._esm_compat import import_inverse_folding

    util = import_inverse_folding().util
    return {p.id: util.get_encoder_output(net, alphabet, torch.from_numpy(p.backbone[:, :3]).to(device)).float().cpu()
            for p in proteins}


def if1_batched(net, alphabet, proteins, device: str) -> None:
    """fair-esm's batched encoder use: length-sorted ``CoordBatchConverter`` batches of <= 4096 padded rows."""
    from esm import FastaBatchedDataset

    from pa_geo.backbones._esm_compat import import_inverse_folding

    conv = import_inverse_folding().util.CoordBatchConverter(alphabet)
    sizes = FastaBatchedDataset([p.id for p in proteins], [p.sequence for p in proteins])
    for batch in sizes.get_batch_indices(4096, extra_toks_per_seq=2):
        coords, conf, _, _, pad = conv.from_lists([proteins[j].backbone[:, :3] for j in batch])
        out = net.encoder(coords.to(device), pad.to(device), conf.to(device))["encoder_out"][0]
        for b, j in enumerate(batch):
            out[1:len(proteins[j]) + 1, b].cpu().clone()


def hf_loader(hf_dir: Path, device: str):
    """The ESM-2 model card's objects: ``AutoTokenizer`` + ``EsmModel`` (loaded once, outside the timing)."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    return tok, transformers.EsmModel.from_pretrained(hf_dir, add_pooling_layer=False).eval().to(device)


def hf_naive(tok, model, proteins, device: str) -> None:
    """The model card's loop: tokenizer + model per protein, last hidden state minus BOS/EOS."""
    for p in proteins:
        enc = tok([p.sequence], return_tensors="pt").to(device)
        model(**enc).last_hidden_state[0, 1:-1].cpu()


def timed(repeats: int, runs: dict[str, Callable[[int], object]]) -> dict[str, float]:
    """Best wall time per run over ``repeats`` interleaved rounds."""
    best = {k: float("inf") for k in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            with torch.inference_mode():
                fn(r)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def max_diff(bb, proteins, reference: dict[str, torch.Tensor]) -> float:
    """max |pa_geo - reference| over the residues both cover (fair-esm truncates at 1022)."""
    with torch.inference_mode():
        outs = bb.embed(proteins)
    layer = bb.layers[-1]
    return max(float((o[layer][:len(reference[p.id])] - reference[p.id]).abs().max()) for p, o in zip(proteins, outs))


# -- one (model, input set) ---------------------------------------------------------------------------------------
def bench(kind: str, models: dict, proteins: list[Protein], label: str, args, tmp: Path, check: bool) -> dict:
    from pa_geo.cache.runner import embed_proteins

    net, alphabet = models["esm_if1" if kind == "esm_if1" else ("esm2_35m" if kind == "hf_esm2" else kind)]
    dev = args.device
    bb = pa_geo_backbone(kind, net, alphabet, dev, tmp / "hf_esm2")
    layer = bb.layers[-1]
    rows = {p.id: min(len(p), 1022) for p in proteins}
    if kind == "esm_if1":
        naive, batched = (lambda r: if1_naive(net, alphabet, proteins, dev)), \
            (lambda r: if1_batched(net, alphabet, proteins, dev))
        rows = {p.id: len(p) for p in proteins}
    elif kind == "hf_esm2":
        tok, hf_model = hf_loader(tmp / "hf_esm2", dev)
        naive, batched = (lambda r: hf_naive(tok, hf_model, proteins, dev)), None
    else:
        naive = lambda r: esm_naive(net, alphabet, proteins, layer, dev)  # noqa: E731
        batched = lambda r: esm_extract(net, alphabet, proteins, layer, dev, tmp)  # noqa: E731
    runs = {"naive": naive, **({"fair-esm": batched} if batched else {}),
            "pa_geo": lambda r: embed_proteins(bb, proteins, tmp / f"c-{kind}-{label}-{r}", progress=False)}
    for budget in (args.sweep or []):
        runs[f"pa_geo@{budget}"] = lambda r, b=budget: embed_proteins(bb, proteins, tmp / f"s{b}-{kind}-{label}-{r}",
                                                                      batch_tokens=b, progress=False)
    with torch.inference_mode():
        bb.embed(proteins[:1])  # warm-up
    seconds = timed(args.repeats, runs)
    n_rows = {k: (sum(len(p) for p in proteins) if k.startswith("pa_geo") else sum(rows.values())) for k in runs}
    rps = {k: n_rows[k] / v for k, v in seconds.items()}
    out = {"model": kind, "set": label, "proteins": len(proteins), "residues": sum(len(p) for p in proteins),
           "max_len": max(len(p) for p in proteins), "batch_tokens": bb.default_batch_tokens(), "seconds": seconds,
           "residues_per_s": rps, "vs_naive": rps["pa_geo"] / rps["naive"],
           "vs_fair_esm": rps["pa_geo"] / rps["fair-esm"] if "fair-esm" in rps else None,
           "compute_dtype": str(bb.dtype).replace("torch.", ""), "loadavg": os.getloadavg()}
    if check:
        with torch.inference_mode():
            ref = (if1_naive(net, alphabet, proteins, dev) if kind == "esm_if1"
                   else esm_naive(net, alphabet, proteins, layer, dev))
        out["max_abs_diff_vs_fair_esm"] = max_diff(bb, proteins, ref)
    return out


def peak_memory(models: dict, device: str) -> list[dict]:
    """Peak CUDA memory of one forward at L = 1000 / 2000: fair-esm ESM-2 float32 vs pa_geo (bf16 autocast)."""
    from pa_geo.backbones.esm_fast import esm_representations

    net, alphabet = models["esm2_35m"]
    out = []
    for L in (1000, 2000):
        toks = torch.full((1, L + 2), alphabet.get_idx("A"), dtype=torch.long, device=device)
        toks[0, 0], toks[0, -1] = alphabet.cls_idx, alphabet.eos_idx
        row = {"model": "esm2_35m", "L": L}
        for name, fn in {"fair-esm fp32": lambda: net(toks, repr_layers=[12]),
                         "pa_geo bf16": lambda: esm_representations(net, toks, [12])}.items():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled="pa_geo" in name):
                fn()
            row[name] = torch.cuda.max_memory_allocated() / 2**20
        out.append(row)
    return out


def profile_if1(models: dict, device: str, top: int = 8) -> dict[str, list[dict]]:
    """torch.profiler of fair-esm's ESM-IF1 encoder vs pa_geo's on one real ~300-residue chain: the ``top`` ops
    by self CPU time (grouped by input shapes), with their share of the total."""
    from torch.profiler import ProfilerActivity, profile

    from pa_geo.backbones._esm_compat import import_inverse_folding
    from pa_geo.backbones.esm_if1_fast import if1_encoder_forward

    net, alphabet = models["esm_if1"]
    p = chains(1, 295, 305, seed=3)[0][0]
    coords, conf, _, _, pad = import_inverse_folding().util.CoordBatchConverter(alphabet).from_lists(
        [p.backbone[:, :3]])
    coords, conf, pad = coords.to(device), conf.to(device), pad.to(device)
    out = {}
    for name, fn in {"fair-esm": lambda: net.encoder(coords, pad, conf),
                     "pa_geo": lambda: if1_encoder_forward(net.encoder, coords, pad, conf)}.items():
        with torch.inference_mode():
            fn()
            t = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                fn()
            wall = time.perf_counter() - t
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
        out[name] = [{"op": e.key, "shapes": str(e.input_shapes), "calls": e.count,
                      "pct": 100.0 * e.self_cpu_time_total / total} for e in rows]
        print(f"\nESM-IF1 encoder profile, {name}, L={len(p)} ({wall:.1f} s wall under the profiler):")
        for r in out[name]:
            print(f"  {r['pct']:5.1f}%  {r['op']:<24} x{r['calls']:<3} {r['shapes'][:90]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["esm2_35m", "esm1b", "esm_if1", "hf_esm2"])
    ap.add_argument("--sets", nargs="+", default=["a", "b"], help="a: 8 x ~300 residues; b: 64 real lengths")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--sweep", nargs="*", type=int, default=None, help="also pa_geo at these batch budgets")
    ap.add_argument("--quick", action="store_true", help="smoke test: ESM-2 35M + ESM-IF1 on 2 short chains")
    ap.add_argument("--profile", action="store_true", help="also profile the ESM-IF1 encoders on one chain")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from pa_geo.backbones.hf_convert import fair_esm2_to_hf

    sets = {"a": chains(8, 280, 320, seed=0), "b": chains(64, seed=1)}
    if args.quick:
        args.models, args.sets = [m for m in args.models if m in ("esm2_35m", "esm_if1", "hf_esm2")], ["q"]
        sets["q"] = chains(2, 30, 60, seed=2)
    builders = {"esm2_35m": esm2_35m, "esm1b": full_esm1b, "esm_if1": full_esm_if1}
    tmp = Path(tempfile.mkdtemp(prefix="pa_geo_bench_"))
    models = {k: (m.to(args.device), a) for k, (m, a) in
              ((k, builders[k]()) for k in {("esm2_35m" if m == "hf_esm2" else m) for m in args.models})}
    if "hf_esm2" in args.models:
        fair_esm2_to_hf(models["esm2_35m"][0].cpu(), models["esm2_35m"][1], tmp / "hf_esm2")
        models["esm2_35m"][0].to(args.device)
    results = []
    for label in args.sets:
        proteins, source = sets[label]
        for kind in args.models:
            t0 = time.perf_counter()
            results.append(bench(kind, models, proteins, label, args, tmp, check=label in ("a", "q")))
            results[-1].update(data=source, wall_s=time.perf_counter() - t0)
            print(f"[{kind} set {label}: {results[-1]['wall_s']:.0f} s]", file=sys.stderr, flush=True)
    memory = peak_memory(models, args.device) if args.device.startswith("cuda") else []
    profiles = profile_if1(models, args.device) if args.profile and "esm_if1" in models else {}
    report(results, memory, profiles, args)


def report(results: list[dict], memory: list[dict], profiles: dict, args) -> None:
    print(f"\nembedding throughput, residues/s ({args.device}, {args.threads} threads, "
          f"load avg {os.getloadavg()[0]:.1f}; max |diff| vs fair-esm's own forward)")
    extra = sorted({k for r in results for k in r["residues_per_s"] if "@" in k})
    print(f"{'model':<9} {'set':<4} {'N x Lmed':>9} {'naive':>8} {'fair-esm':>9} {'pa_geo':>8} "
          f"{'vs naive':>9} {'vs fair-esm':>12} {'max|diff|':>10}" + "".join(f"{k:>15}" for k in extra))
    for r in results:
        rps = r["residues_per_s"]
        vs = f"{r['vs_fair_esm']:.2f}x" if r["vs_fair_esm"] else "-"
        diff = f"{r['max_abs_diff_vs_fair_esm']:.1e}" if "max_abs_diff_vs_fair_esm" in r else "-"
        print(f"{r['model']:<9} {r['set']:<4} {r['proteins']:>3} x {r['residues'] // r['proteins']:<4}"
              f"{rps['naive']:>8.1f} {rps.get('fair-esm', float('nan')):>9.1f} {rps['pa_geo']:>8.1f} "
              f"{r['vs_naive']:>8.2f}x {vs:>12} {diff:>10}" + "".join(f"{rps.get(k, float('nan')):>15.1f}"
                                                                     for k in extra))
    for m in memory:
        print(f"peak CUDA memory, {m['model']} L={m['L']}: fair-esm fp32 {m['fair-esm fp32']:.0f} MiB, "
              f"pa_geo bf16 {m['pa_geo bf16']:.0f} MiB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("embed_quick.json" if args.quick else f"embed{'' if args.device == 'cpu' else '_cuda'}.json")
    out = {"argv": sys.argv, "torch": torch.__version__, "machine": platform.machine(), "device": args.device,
           "threads": args.threads, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "results": results, "peak_memory_mib": memory, "esm_if1_profile": profiles}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
