"""Peak memory and time of one ProteinAdapter training step (forward + backward) on one long protein.

    .venv/bin/python benchmarks/adapter_memory.py            # all points, table + JSON + PNG in benchmarks/results/
    .venv/bin/python benchmarks/adapter_memory.py --lengths 500 1000 --series graph
    .venv/bin/python benchmarks/adapter_memory.py --series global_dropout --lengths 500 1000 2000 4000 \
        --out benchmarks/results/adapter_memory_dropout.json
    .venv/bin/python benchmarks/adapter_memory.py --series global global_plain   # with / without geometric bias

Setup: one protein of L residues, two frozen levels (1280 + 512 dims, like ESM-1b + ESM-IF1), the default adapter
(d_model 128, 2 blocks, 4 heads, concat fusion, cross-attention over node sets - ``cross_scope="nodes"``: in global
mode each level attends over all L nodes of the other level, a second L x L attention per level and block - train
mode), with the geometric attention bias (the default: distance RBFs and sequence separation, one chain with
``pos`` / ``pos_mask`` / ``chain_index``) unless the series name ends in ``_plain`` (``geometric_bias=False``).
Graph mode runs on a kNN graph (k = 30) of a random-walk CA trace (3.8 A steps) built with
``torch_cluster.knn_graph``.

Memory method: each point runs in a fresh subprocess (no allocator state or caches from earlier points). The child
builds inputs and model, runs a small warm-up step, then resets the kernel's peak-RSS counter (``5`` ->
``/proc/self/clear_refs``), reads ``VmRSS``, runs forward + backward and reads ``VmHWM``: the reported peak is
``VmHWM - VmRSS_before``, the extra resident memory the step needed at its high-water mark (activations, saved
tensors, attention scores, gradients). glibc's mmap threshold is pinned (``MALLOC_MMAP_THRESHOLD_``) so every large
tensor is its own mapping, returned to the kernel when freed: freed setup memory cannot hide step allocations, and
RSS follows live tensors. Time: wall clock and process CPU time (user + system, all threads), the latter being
less sensitive to other load on a shared machine. (tracemalloc does not see torch's allocations; the torch profiler reports allocation
events, not a high-water mark.) The global-mode reference is one head's L x L float32 score matrix, L^2 * 4 bytes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = {"emb_esm1b_33": 1280, "emb_esm_if1_3": 512}
DEFAULT_LENGTHS = (500, 1000, 2000, 4000, 8000)
SERIES = {"graph": ("graph", 0.0, True), "global": ("global", 0.0, True), "global_dropout": ("global", 0.1, True),
          "graph_plain": ("graph", 0.0, False), "global_plain": ("global", 0.0, False)}


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def random_walk_trace(length: int, seed: int = 0):
    """CA trace [L, 3]: persistent random walk with 3.8 A steps (a chain that does not fold back on itself much)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(3, generator=g), dim=0)
    steps = []
    for _ in range(length):
        direction = torch.nn.functional.normalize(direction + 0.8 * torch.randn(3, generator=g), dim=0)
        steps.append(direction * 3.8)
    return torch.cumsum(torch.stack(steps), dim=0)


def measure_point(mode: str, length: int, k: int, threads: int, attn_dropout: float, bias: bool = True) -> dict:
    """Run in the child process: one forward + backward, return peak-RSS delta and time."""
    import torch
    from torch_cluster import knn_graph
    from torch_geometric.data import Data

    from pa_geo.nn.adapter import ProteinAdapter

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def protein(n: int) -> Data:
        pos = random_walk_trace(n)
        data = Data(pos=pos, pos_mask=torch.ones(n, dtype=torch.bool), chain_index=torch.zeros(n, dtype=torch.long),
                    edge_index=knn_graph(pos, k=min(k, n - 1)), num_nodes=n)
        for name, dim in LEVELS.items():
            data[name] = torch.randn(n, dim)
        return data

    model = ProteinAdapter(LEVELS, attention=mode, attn_dropout=attn_dropout, geometric_bias=bias).train()
    warm = protein(64)
    model(warm).square().mean().backward()
    model.zero_grad(set_to_none=True)
    data = protein(length)
    del warm

    import gc
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kb("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    out = model(data)
    out.square().mean().backward()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _status_kb("VmHWM")
    return {"mode": mode, "attn_dropout": attn_dropout, "geometric_bias": bias, "L": length,
            "edges": int(data.edge_index.shape[1]),
            "threads": threads, "peak_delta_bytes": (peak - before) * 1024, "rss_before_bytes": before * 1024,
            "seconds": seconds, "cpu_seconds": cpu_seconds, "one_head_scores_bytes": length * length * 4}


def run_point(mode: str, length: int, args: argparse.Namespace, attn_dropout: float, bias: bool = True) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--child", mode, str(length), "--k", str(args.k),
           "--threads", str(args.threads), "--attn-dropout", str(attn_dropout)] + ([] if bias else ["--plain"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.point_timeout,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"point {mode} L={length} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def _name(p: dict) -> str:
    return p["mode"] + ("" if p.get("geometric_bias", False) else "_plain") + \
        (f"+drop{p['attn_dropout']:g}" if p["attn_dropout"] else "")


def table(points: list[dict]) -> str:
    head = f"{'mode':<16}{'L':>6}{'edges':>9}{'peak MiB':>10}{'1-head L^2*4 MiB':>18}{'peak/1-head':>13}{'wall s':>8}{'CPU s':>8}"
    rows = [head, "-" * len(head)]
    for p in points:
        name = _name(p)
        ratio = p["peak_delta_bytes"] / p["one_head_scores_bytes"]
        rows.append(f"{name:<16}{p['L']:>6}{p['edges']:>9}{_mib(p['peak_delta_bytes']):>10}"
                    f"{_mib(p['one_head_scores_bytes']):>18}{ratio:>13.2f}{p['seconds']:>8.2f}{p['cpu_seconds']:>8.2f}")
    return "\n".join(rows)


def plot(points: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in sorted({_name(p) for p in points}):
        pts = sorted((p for p in points if _name(p) == label), key=lambda p: p["L"])
        ls = [p["L"] for p in pts]
        ax_m.plot(ls, [p["peak_delta_bytes"] / 2**20 for p in pts], "o-", label=label)
        ax_t.plot(ls, [p["seconds"] for p in pts], "o-", label=label + " wall")
        ax_t.plot(ls, [p["cpu_seconds"] for p in pts], "x:", color=ax_t.lines[-1].get_color(), label=label + " CPU")
    ls = sorted({p["L"] for p in points})
    ax_m.plot(ls, [l * l * 4 / 2**20 for l in ls], "k--", label="one head's L x L scores (L^2 x 4 B)")
    ax_m.axhline(8 * 1024, color="r", lw=0.8, ls=":", label="8 GiB")
    for ax, title in ((ax_m, "peak extra RSS, forward + backward (MiB)"), (ax_t, "forward + backward time (s), wall and process CPU")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ls, [str(length) for length in ls])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("residues L")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=8)
    ax_t.legend(fontsize=8)
    fig.suptitle("ProteinAdapter training step on one protein (levels 1280 + 512, d_model 128, 2 blocks, 4 heads)",
                 fontsize=10)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    ap.add_argument("--series", nargs="+", choices=list(SERIES),
                    default=["graph", "global", "graph_plain", "global_plain"],
                    help="global_dropout = global mode with attention dropout 0.1 (the CPU math-SDPA path, "
                         "where query chunking + checkpointing is what bounds memory); *_plain = without the "
                         "geometric bias")
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 by default: on a shared machine, OpenMP spin-waits of more threads dominate")
    ap.add_argument("--point-timeout", type=float, default=240)
    ap.add_argument("--out", type=Path, default=RESULTS / "adapter_memory.json")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "L"), help=argparse.SUPPRESS)
    ap.add_argument("--attn-dropout", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure_point(args.child[0], int(args.child[1]), args.k, args.threads, args.attn_dropout,
                                       not args.plain)))
        return 0
    points, start = [], time.perf_counter()
    for mode, drop, bias in (SERIES[name] for name in args.series):
        for length in args.lengths:
            try:
                p = run_point(mode, length, args, drop, bias)
            except subprocess.TimeoutExpired:
                print(f"{mode} (attn dropout {drop:g}, bias {bias}) L={length}: over --point-timeout "
                      f"{args.point_timeout:.0f} s, skipped with the longer lengths", flush=True)
                break
            points.append(p)
            print(table([p]).splitlines()[-1], flush=True)
    print()
    print(table(points))
    total = time.perf_counter() - start
    import torch
    meta = {"torch": torch.__version__, "levels": LEVELS, "d_model": 128, "n_blocks": 2, "n_heads": 4,
            "cross_scope": "nodes", "knn_k": args.k, "series": args.series,
            "threads": args.threads, "method": "VmHWM - VmRSS in a fresh subprocess per point (see module docstring)",
            "total_seconds": total}
    _atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps({"meta": meta, "points": points}, indent=1)))
    plot(points, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.png')} in {total:.0f} s")
    graph8k = [p for p in points if p["mode"] == "graph" and p["L"] >= 8000]
    if graph8k and not all(p["peak_delta_bytes"] < 8 * 2**30 for p in graph8k):
        print("WARNING: graph mode exceeded 8 GiB at L=8000")
    return 0 if math.isfinite(total) else 1


if __name__ == "__main__":
    sys.exit(main())
