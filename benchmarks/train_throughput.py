"""Training throughput of the demo's models (residues/s of forward + backward + optimiser over the same batches) and
a per-stage profile of the full adapter.

    .venv/bin/python benchmarks/train_throughput.py          # table + benchmarks/results/train_throughput.json
    .venv/bin/python benchmarks/train_throughput.py --cache .cache/embeddings --repeats 5 --threads 2

Models: the rows of ``pa-geo demo`` (``pa_geo.demo.models.DEMO_MODELS``), each built by the CLI exactly as the demo
builds it (experiment config + ablation config), on the structure experiment's primary task
(``configs/demo_ss8.yaml``: 8-state DSSP, NEAR-8 + ProteinMPNN-CA-3 levels, the demo's widths). Batches: the first
``--batches`` training batches of that config's loader (real StructureDB CA-trace graphs, the config's node budget,
seed 0), read once and reused by every model. Embeddings: from ``--cache`` if given (e.g. the cache ``pa-geo demo``
fills), else random vectors of the right widths in a temporary cache (throughput does not depend on the values).
One step = ``PaGeoModule`` loss of the batch, backward, AdamW step. Reported: median over ``--repeats`` passes
(models timed round-robin, so machine load hits all alike) of the residues/s of one pass, and the ratio to the
adapter's; then one profiled pass of the adapter (``torch.profiler``, the model's ``pa_geo.nn.profiling`` scopes):
CPU time per stage (inclusive of nested scopes, forward only: backward runs outside the scopes) as a share of the
step. Timings on a shared machine are noisy; compare ratios within one run.
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


def build(model: str, cache: str, store: str) -> object:
    """The demo's CLI object for ``model`` on demo_ss8 (seed 0), embeddings from ``cache``."""
    from pa_geo.demo.models import CONFIGS, model_args
    from pa_geo.demo.training import build_cli

    base = ["--config", str(CONFIGS / "demo_ss8.yaml"), "--data.data_root", str(ROOT / "data"),
            "--data.graph_cache", store, "--trainer.logger", "false", "--seed_everything", "0"]
    plain = build_cli(base)
    base += ["--data.embeddings", json.dumps([{**e, "cache": cache} for e in plain.datamodule.embeddings])]
    return build_cli(base + model_args(model, plain.config, CONFIGS))


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


def one_pass(model: torch.nn.Module, opt: torch.optim.Optimizer, data: list) -> float:
    """Seconds of forward + backward + optimiser step over ``data``."""
    model.train()
    start = time.perf_counter()
    for batch in data:
        opt.zero_grad(set_to_none=True)
        loss, _ = model._task_loss(batch)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def stage_profile(model: torch.nn.Module, opt: torch.optim.Optimizer, data: list) -> dict[str, float]:
    """CPU ms per named stage over one profiled pass (``total`` = the whole pass)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        total = one_pass(model, opt, data)
    stages = {e.key: e.cpu_time_total / 1000.0 for e in prof.key_averages() if e.key.startswith(STAGE_PREFIXES)}
    return {"total": total * 1000.0, **dict(sorted(stages.items()))}


def main() -> None:
    from pa_geo.demo.models import DEMO_MODELS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEMO_MODELS))
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
    for _ in range(args.repeats):
        for m, c in clis.items():
            times[m].append(one_pass(c.model, opts[m], data))
    ref = "adapter" if "adapter" in times else args.models[0]
    rows = []
    for m in clis:
        med = statistics.median(times[m])
        rows.append({"model": m, "median_s": round(med, 3), "residues_per_s": round(residues / med, 1),
                     "x_adapter_time": round(med / statistics.median(times[ref]), 3),
                     "trainable_params": sum(p.numel() for p in clis[m].model.parameters() if p.requires_grad)})
    profile = stage_profile(clis[ref].model, opts[ref], data) if ref in clis else {}
    head = f"{'model':<28}{'residues/s':>12}{'x adapter time':>16}{'trainable':>12}"
    lines = [f"{len(data)} batches, {residues} residues, median of {args.repeats} passes, "
             f"{torch.get_num_threads()} threads", head, "-" * len(head)]
    lines += [f"{r['model']:<28}{r['residues_per_s']:>12,.0f}{r['x_adapter_time']:>16.2f}{r['trainable_params']:>12,}"
              for r in rows]
    if profile:
        lines += ["", f"per-stage CPU time of {ref} (one profiled pass, forward scopes, inclusive)",
                  f"{'stage':<28}{'ms':>10}{'% of pass':>11}"]
        lines += [f"{k:<28}{v:>10.1f}{100 * v / profile['total']:>10.1f}%" for k, v in profile.items()]
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"batches": len(data), "residues": residues, "repeats": args.repeats,
               "threads": torch.get_num_threads(), "embeddings": "random" if args.cache is None else "cache",
               "rows": rows, "profile_ms": profile, "table": "\n".join(lines)}
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
