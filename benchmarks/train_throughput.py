"""Training throughput of the demo's models (residues/s of forward + backward + optimiser over the same batches) and
a per-stage profile of the full adapter.

    .venv/bin/python benchmarks/train_throughput.py          # table + benchmarks/results/train_throughput.json
    .venv/bin/python benchmarks/train_throughput.py --cache .cache/embeddings --repeats 5 --threads 2

Models: the trained rows of ``pa-geo demo`` (``pa_geo.demo.models.DEMO_MODELS`` but the trees), each built by the CLI exactly as the demo
builds it (experiment config + ablation config), on the structure experiment's primary task
(``configs/demo_ss8.yaml``: 8-state DSSP, NEAR-8 + ProteinMPNN-CA-3 levels, the demo's widths). Batches: the first
``--batches`` training batches of that config's loader (real StructureDB CA-trace graphs, the config's node budget,
seed 0), read once and reused by every model. Embeddings: from ``--cache`` if given (e.g. the cache ``pa-geo demo``
fills), else random vectors of the right widths in a temporary cache (throughput does not depend on the values).
One step = ``PaGeoModule`` loss of the batch, backward, AdamW step. Reported: median over ``--repeats`` passes
(models timed round-robin, so machine load hits all alike) of the residues/s of one pass (wall clock) and of its
process CPU time, each as a ratio to the reference row's; then one profiled pass (``torch.profiler``, the model's
``pa_geo.nn.profiling`` scopes): CPU time per stage (inclusive of nested scopes, forward only: backward runs outside
the scopes). Timings on a shared machine are noisy; compare ratios within one run.

The adapter's geometric attention bias (``ProteinAdapter(geometric_bias=True)``, off by default) is measured against
the same adapter without it: a row named ``<demo row>_geometric_bias`` is that row with ``geometric_bias: true``,
``<demo row>_bias_self_only`` with the bias in the self-attention only (``bias_cross_attention: false``). The
adapter and ``adapter_geometric_bias`` are profiled per stage, and the table gives the bias's cost per stage.
Times are relative to the adapter as configured (no bias) when it runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import checkout  # noqa: F401 - the sibling module: makes this checkout's tests.helpers importable
from pa_geo.graphs.schema import embedding_field
from tests.helpers.caches import fill_random_cache

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STAGE_PREFIXES = ("adapter.", "predictor.", "head")
BIAS = "_geometric_bias"
_BIAS_ON = ["--model.encoder.init_args.adapter.init_args.geometric_bias", "true"]
VARIANTS = {  # row-name suffix -> extra pa-geo fit arguments
    BIAS: _BIAS_ON,
    "_bias_self_only": [*_BIAS_ON, "--model.encoder.init_args.adapter.init_args.bias_cross_attention", "false"],
}


def build(model: str, cache: str, store: str) -> object:
    """The demo's CLI object for ``model`` on demo_ss8 (seed 0), embeddings from ``cache`` (``<row><suffix>``: that
    row with the :data:`VARIANTS` arguments of the suffix)."""
    from pa_geo.demo.models import CONFIGS, model_args
    from pa_geo.demo.training import build_cli

    base = ["--config", str(CONFIGS / "demo_ss8.yaml"), "--data.data_root", str(ROOT / "data"),
            "--data.graph_cache", store, "--trainer.logger", "false", "--seed_everything", "0"]
    plain = build_cli(base)
    base += ["--data.embeddings", json.dumps([{**e, "cache": cache} for e in plain.datamodule.embeddings])]
    suffix = next((v for v in VARIANTS if model.endswith(v)), "")
    row = model.removesuffix(suffix) if suffix else model
    return build_cli(base + model_args(row, plain.config, CONFIGS) + VARIANTS.get(suffix, []))


def batches(cli: object, count: int) -> list:
    """The first ``count`` training batches (float32 embeddings), read once."""
    dm = cli.datamodule
    dm.prepare_data()
    dm.setup("fit")
    out = []
    for batch in dm.train_dataloader():
        batch.task = dm.task
        out.append(cli.model._float32(batch))
        if len(out) == count:
            break
    return out


def one_pass(model: torch.nn.Module, opt: torch.optim.Optimizer, data: list) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of forward + backward + optimiser step over ``data``."""
    model.train()
    start, cpu = time.perf_counter(), time.process_time()
    for batch in data:
        opt.zero_grad(set_to_none=True)
        loss, _ = model._task_loss(batch)
        loss.backward()
        opt.step()
    return time.perf_counter() - start, time.process_time() - cpu


def stage_profile(model: torch.nn.Module, opt: torch.optim.Optimizer, data: list) -> dict[str, float]:
    """CPU ms per named stage over one profiled pass (``total`` = the whole pass)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        total = one_pass(model, opt, data)[1]
    stages = {e.key: e.cpu_time_total / 1000.0 for e in prof.key_averages() if e.key.startswith(STAGE_PREFIXES)}
    return {"total": total * 1000.0, **dict(sorted(stages.items()))}


def main() -> None:
    from pa_geo.demo.models import DEMO_MODELS, FIT, MODELS

    trained = [m for m in DEMO_MODELS if MODELS[m].runner == FIT]  # the trees row has no training epoch
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[*trained, "adapter" + BIAS, "adapter_bias_self_only",
                                                         "summed_levels_transformer" + BIAS])
    parser.add_argument("--cache", default=None, help="embedding cache (default: random vectors, temporary)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS / "train_throughput.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix="pa_geo_throughput_")
    store = str(Path(tmp.name) / "examples")
    cache = args.cache
    clis = {}
    for model in args.models:
        if cache is None:  # random vectors for every protein the config reads, in a temporary cache
            cache = str(Path(tmp.name) / "embeddings")
            first = build(model, cache, store)
            levels = first.model.encoder.adapter.levels
            for entry in first.datamodule.embeddings:
                dims = {int(layer): levels[embedding_field(entry["backbone"], layer)] for layer in entry["layers"]}
                fill_random_cache(cache, entry["backbone"], dims, first.datamodule.proteins())
        torch.manual_seed(0)
        clis[model] = build(model, cache, store)
    data = batches(clis[args.models[0]], args.batches)
    residues = sum(int(b.num_nodes) for b in data)
    opts = {m: torch.optim.AdamW(c.model.parameters(), lr=1e-3) for m, c in clis.items()}
    for m, c in clis.items():  # warm-up: allocator, lazy inits
        one_pass(c.model, opts[m], data[:1])
    times: dict[str, list[float]] = {m: [] for m in clis}
    cpu: dict[str, list[float]] = {m: [] for m in clis}
    for _ in range(args.repeats):
        for m, c in clis.items():
            wall, used = one_pass(c.model, opts[m], data)
            times[m].append(wall)
            cpu[m].append(used)
    ref = "adapter" if "adapter" in times else args.models[0]
    rows = []
    for m in clis:
        med, med_cpu = statistics.median(times[m]), statistics.median(cpu[m])
        rows.append({"model": m, "median_s": round(med, 3), "residues_per_s": round(residues / med, 1),
                     "median_cpu_s": round(med_cpu, 3), "x_ref_time": round(med / statistics.median(times[ref]), 3),
                     "x_ref_cpu": round(med_cpu / statistics.median(cpu[ref]), 3),
                     "trainable_params": sum(p.numel() for p in clis[m].model.parameters() if p.requires_grad)})
    profiled = [m for m in ("adapter" + BIAS, "adapter") if m in clis] or [ref]
    profiles = {m: stage_profile(clis[m].model, opts[m], data) for m in profiled}
    head = f"{'model':<44}{'residues/s':>12}{'x wall':>8}{'CPU s':>9}{'x CPU':>7}{'trainable':>12}"
    lines = [f"{len(data)} batches, {residues} residues, median of {args.repeats} passes, "
             f"{torch.get_num_threads()} threads; x = time / {ref}'s (process CPU time: steadier under load)",
             head, "-" * len(head)]
    lines += [f"{r['model']:<44}{r['residues_per_s']:>12,.0f}{r['x_ref_time']:>8.2f}{r['median_cpu_s']:>9.2f}"
              f"{r['x_ref_cpu']:>7.2f}{r['trainable_params']:>12,}" for r in rows]
    lines += ["", "per-stage CPU ms (one profiled pass, forward scopes, inclusive)",
              f"{'stage':<28}" + "".join(f"{m:>28}" for m in profiled) +
              (f"{'bias cost':>12}" if len(profiled) == 2 else "")]
    for key in dict.fromkeys(k for p in profiles.values() for k in p):
        values = [profiles[m].get(key, 0.0) for m in profiled]
        extra = f"{values[0] / values[1]:>11.2f}x" if len(values) == 2 and values[1] else ""
        lines.append(f"{key:<28}" + "".join(f"{v:>28.1f}" for v in values) + extra)
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"batches": len(data), "residues": residues, "repeats": args.repeats,
               "threads": torch.get_num_threads(), "embeddings": "random" if args.cache is None else "cache",
               "reference": ref, "rows": rows, "profile_ms": profiles, "table": "\n".join(lines)}
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
