"""Datasets that stream: peak RSS, disk size and items/s of a full training epoch through the DataLoader, at 1k, 5k
and 20k residue graphs (copies of the 619 shipped StructureDB chains, 3-state DSSP per residue), with cached
embeddings (NEAR-8 256-d + ProteinMPNN-3 128-d widths, random values: the read path is the real one), DataLoader
workers 0 and 2, node-budget batches of 8192 nodes (the configs'). Every measurement runs in a fresh process; peak
RSS is the process's ``ru_maxrss`` (main) and the largest worker's (workers). Targets: peak RSS at 20k within 1.5x
of 1k; >= 1,000 graphs/s with 2 workers. Also: bytes per graph with float16 / float32 edge features or none (derived on
read), the cost of decoding vs rebuilding a graph, and the RSS of reading the 20k store through ``mmap`` (as an LMDB
reader does) instead of ``pread``.

    .venv/bin/python benchmarks/dataset_scale.py [--sizes 1000 5000 20000] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import checkout  # noqa: F401 - the sibling module: makes this checkout's tests.helpers importable
from tests.helpers.caches import fill_random_cache

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUDGET = 8192  # data.batch_nodes of configs/base/model.yaml
DIMS = {"near": {8: 256}, "proteinmpnn": {3: 128}}


@functools.lru_cache(maxsize=1)
def chains() -> list:
    from pa_geo.formats.structuredb import load_structuredb

    return load_structuredb(ROOT / "data" / "structuredb_subset.npz")


def _records(n: int, root: Path, split: str):
    """``n`` copies of the shipped chains, streamed (protein content shared: the same cached embeddings)."""
    from pa_geo.datasets.records import TaskRecord

    base = chains()
    for i in range(n if split == "train" else 4):
        r = base[i % len(base)]
        yield TaskRecord(f"{r.protein.id}#{i}", [r.protein], r.ss3)


def register(n: int) -> str:
    """The benchmark task with ``n`` training graphs."""
    from pa_geo.tasks import TaskSpec, register_task

    name = f"bench_scale_{n}"
    register_task(TaskSpec(name, "structure", "node", "multiclass", 3, ["accuracy"], "accuracy",
                           ["train", "valid", "test"], loader=functools.partial(_records, n)), overwrite=True)
    return name


def datamodule(n: int, work: Path, workers: int):
    from pa_geo.train.datamodule import PaGeoDataModule

    cache = str(work / "embeddings")
    emb = [{"cache": cache, "backbone": b, "layers": list(d)} for b, d in DIMS.items()]
    return PaGeoDataModule(register(n), str(ROOT / "data"), emb, {"kind": "residue", "radius": 10.0},
                           batch_nodes=BUDGET, num_workers=workers, graph_cache=str(work / "stores"))


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def child_build(n: int, work: Path) -> dict:
    dm = datamodule(n, work, 0)
    start = time.perf_counter()
    store = dm.store(dm.task, "train")
    seconds = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in store.path.iterdir())
    return {"build_s": seconds, "disk_mb": disk / 2 ** 20, "kb_per_graph": disk / len(store) / 1e3,
            "graphs": len(store), "nodes": int(store.sizes.sum())}


def _cpu_s(who: int) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def child_epoch(n: int, work: Path, workers: int) -> dict:
    dm = datamodule(n, work, workers)
    loader = dm.train_dataloader()
    graphs = nodes = 0
    cpu0 = _cpu_s(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for batch in loader:
        graphs += batch.num_graphs
        nodes += batch.num_nodes
        assert batch.emb_near_8.shape == (batch.num_nodes, 256)
    seconds = time.perf_counter() - start
    main_cpu = _cpu_s(resource.RUSAGE_SELF) - cpu0
    del loader, batch
    gc.collect()
    cpu = main_cpu + _cpu_s(resource.RUSAGE_CHILDREN)  # workers: reaped when the loader went away
    return {"epoch_s": seconds, "graphs": graphs, "graphs_per_s": graphs / seconds, "nodes": nodes,
            "cpu_ms_per_graph": 1e3 * cpu / graphs,
            "rss_main_mb": _peak_mb(resource.RUSAGE_SELF), "rss_worker_mb": _peak_mb(resource.RUSAGE_CHILDREN)}


def child_mmap(n: int, work: Path) -> dict:
    """Read every example of the store through one mmap of examples.bin (an LMDB reader's access pattern)."""
    from pa_geo.datasets.example_store import decode_example

    store = datamodule(n, work, 0).store(register(n), "train")
    with open(store.path / "examples.bin", "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start = time.perf_counter()
        for i in range(len(store)):
            decode_example(bytearray(mm[int(store.offsets[i]):int(store.offsets[i + 1])]))
        seconds = time.perf_counter() - start
    return {"graphs_per_s": len(store) / seconds, "rss_main_mb": _peak_mb(resource.RUSAGE_SELF)}


def edge_feature_costs(k: int = 100) -> dict:
    """Bytes per stored graph by edge-feature format, and decode vs rebuild time per graph (1 thread)."""
    from pa_geo.datasets.example_store import decode_example, encode_example
    from pa_geo.graphs import residue_graph

    sub = chains()[::max(1, len(chains()) // k)][:k]
    start = time.perf_counter()
    graphs = [residue_graph(r.protein) for r in sub]
    build = (time.perf_counter() - start) / len(sub)
    blobs = [bytearray(encode_example(g)) for g in graphs]
    start = time.perf_counter()
    for b in blobs:
        decode_example(b)
    decode = (time.perf_counter() - start) / len(blobs)
    without = []
    for g in graphs:
        h = g.clone()
        del h.edge_attr
        without.append(len(encode_example(h)))
    return {"kb_float16": np.mean([len(b) for b in blobs]) / 1e3,
            "kb_float32": np.mean([len(encode_example(g, edge_float16=False)) for g in graphs]) / 1e3,
            "kb_no_edge_attr": np.mean(without) / 1e3, "decode_ms": decode * 1e3, "rebuild_ms": build * 1e3,
            "mean_residues": float(np.mean([g.num_nodes for g in graphs])),
            "mean_edges": float(np.mean([g.edge_index.shape[1] for g in graphs]))}


def _run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--workdir", default=None, help="where stores and the cache go (default: a temp folder)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child:
        kind, n, work = args.child[0], int(args.child[1]), Path(args.child[2])
        out = {"build": lambda: child_build(n, work), "mmap": lambda: child_mmap(n, work),
               "epoch": lambda: child_epoch(n, work, int(args.child[3]))}[kind]()
        print(json.dumps(out))
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pa_geo_scale_"))
    try:
        proteins = [r.protein for r in chains()]
        for backbone, dims in DIMS.items():
            fill_random_cache(work / "embeddings", backbone, dims, proteins)
        rows = []
        for n in args.sizes:
            built = _run_child("build", str(n), str(work))
            for w in args.workers:
                rows.append({"graphs": n, "workers": w, **built, **_run_child("epoch", str(n), str(work), str(w)),
                             "load_avg": os.getloadavg()[0]})
                r = rows[-1]
                print(f"  {n:>6} graphs, {w} workers: {r['graphs_per_s']:7.0f} graphs/s, peak RSS main "
                      f"{r['rss_main_mb']:.0f} MB, worker {r['rss_worker_mb']:.0f} MB, disk {r['disk_mb']:.0f} MB",
                      flush=True)
        mm = _run_child("mmap", str(max(args.sizes)), str(work))
        costs = edge_feature_costs()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report(rows, mm, costs, args)
    return 0


def report(rows: list[dict], mm: dict, costs: dict, args: argparse.Namespace) -> None:
    head = f"{'graphs':>7} {'workers':>7} {'build s':>8} {'disk MB':>8} {'kB/graph':>8} {'epoch s':>8} " \
           f"{'graphs/s':>9} {'CPU ms/graph':>12} {'RSS main MB':>11} {'RSS worker MB':>13} {'load':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['graphs']:>7} {r['workers']:>7} {r['build_s']:>8.1f} {r['disk_mb']:>8.0f} "
                     f"{r['kb_per_graph']:>8.0f} {r['epoch_s']:>8.1f} {r['graphs_per_s']:>9.0f} "
                     f"{r['cpu_ms_per_graph']:>12.2f} "
                     f"{r['rss_main_mb']:>11.0f} {r['rss_worker_mb']:>13.0f} {r['load_avg']:>5.1f}")
    small, large = min(args.sizes), max(args.sizes)
    checks = {}
    for w in args.workers:
        by = {r["graphs"]: r for r in rows if r["workers"] == w}
        peak = {n: max(by[n]["rss_main_mb"], by[n]["rss_worker_mb"]) for n in by}
        checks[f"rss_ratio_{large}_vs_{small}_workers{w}"] = peak[large] / peak[small]
    slowest = min((r["graphs_per_s"] for r in rows if r["workers"] == 2), default=float("nan"))
    lines.append("")
    for key, ratio in checks.items():
        lines.append(f"{key}: {ratio:.2f} (target <= 1.5: {'ok' if ratio <= 1.5 else 'MISSED'})")
    lines.append(f"graphs/s with 2 workers, slowest size: {slowest:.0f} (target >= 1000: "
                 f"{'ok' if slowest >= 1000 else 'MISSED'}; "
                 f"machine load {max(r['load_avg'] for r in rows):.1f} on {os.cpu_count()} cores; CPU ms/graph says "
                 f"what an idle machine allows)")
    pread = max(r["rss_main_mb"] for r in rows if r["graphs"] == large)
    lines.append(f"reading the {large}-graph store through mmap: peak RSS {mm['rss_main_mb']:.0f} MB "
                 f"({mm['graphs_per_s']:.0f} graphs/s) vs {pread:.0f} MB through pread (the DataLoader runs above)")
    lines.append(f"edge features per graph ({costs['mean_residues']:.0f} residues, {costs['mean_edges']:.0f} edges): "
                 f"float16 {costs['kb_float16']:.0f} kB, float32 {costs['kb_float32']:.0f} kB, derived on read "
                 f"{costs['kb_no_edge_attr']:.0f} kB; decode {costs['decode_ms']:.2f} ms vs rebuild "
                 f"{costs['rebuild_ms']:.2f} ms per graph")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "checks": checks, "min_graphs_per_s_2_workers": slowest, "mmap_read": mm,
               "edge_features": costs, "batch_nodes": BUDGET, "cpus": os.cpu_count(), "table": text}
    (RESULTS / "dataset_scale.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
