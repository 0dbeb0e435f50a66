"""Train the models shipped in ``pa_geo/pretrained``: 8-state DSSP + RSA per residue on StructureDB chains.

    python scripts/train_pretrained.py [--seeds 3] [--extra "--model.lr 0.003 --trainer.max_epochs 20"] [--ship]
    python scripts/train_pretrained.py --quick      # smoke test: a handful of chains, 1 epoch, 1 seed

Steps (``--out``, default ``runs/pretrained``):

1. data (``scripts/pretrained_data.py``): every chain of ``--structuredb``, minus the chains of the 50
   ``--pdb-dssp`` PDB entries and their sequence clusters; a split grouped by PDB entry and sequence cluster
   (MMseqs2 30% identity / 80% coverage, else k-mers), 80/10/10, seed 0 -> ``<out>/data/split.csv`` (+
   ``excluded.csv``); the tasks of :mod:`pa_geo.pretrained.tasks` read that folder;
2. per variant (``ss8-rsa``: full backbones, NEAR-8 + ProteinMPNN-3 + ``geom``; ``ss8-rsa-ca``: CA traces,
   NEAR-8 + ProteinMPNN-CA-3 + ``geom``): the demo's structure experiment config
   (``configs/multitask/demo_ss8_rsa.yaml``, with ``configs/embeddings/offline.yaml`` for full backbones) on these
   tasks, then ``--extra``; embed once, train ``--seeds`` seeds through the demo's CLI builder, score each seed's
   best-validation checkpoint on the test split, fit the CA-geometry trees (:mod:`pa_geo.demo.trees`) on the same
   example stores with 3 seeds;
3. the best-validation seed's checkpoint, slimmed (weights, init arguments, the ``pa_geo`` block), predicts the 50
   independent chains through ``pa-geo predict``'s path and is scored against their DSSP
   (:mod:`pa_geo.pretrained.scoring`); ``<out>/<variant>.ckpt`` + ``<out>/<variant>.json`` (the card's numbers);
4. the model card (``scripts/pretrained_card.py``) -> ``<out>/ss8-rsa.md``. ``--ship`` copies the checkpoints and
   JSONs into ``pa_geo/pretrained/checkpoints/`` and the card to ``docs/models/ss8-rsa.md``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr

from pa_geo.demo.models import CONFIGS, MODELS as DEMO_MODELS
from pa_geo.demo.training import RunSpec, build_cli, run_all
from pa_geo.demo.trees import experiment_arrays, fit_on_validation
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.graphs.geometry import GEOM_DIM
from pa_geo.pretrained.registry import FILES, MODELS
from pa_geo.pretrained.scoring import read_dssp3_strings, read_dssp8_table, score_dssp
from pa_geo.pretrained.tasks import CHAINS_FILE, SPLIT_FILE, SS3_OF_SS8, SS8_CLASSES, TASK_NAMES, \
    register_training_tasks
from pa_geo.tables.similarity_split import SplitParams
from pa_geo.train.checkpoint_meta import META_KEY
from pa_geo.train.checkpoints import load_checkpoint, write_atomic
from pa_geo.train.module import PaGeoModule
from pa_geo.train.notices import lightning_warnings_only
from pa_geo.train.predict import predict_from_checkpoint
from pretrained_card import CARD_PATH, render_card
from pretrained_data import independent_chains, make_split, split_summary, subset_check, write_split

REPO = Path(__file__).resolve().parents[1]
LICENCE = {"structuredb": "ProMod3 StructureDB (Debian promod3-data 3.2.1): Apache-2.0",
           "coordinates": "Protein Data Bank: CC0 1.0", "independent_chains": "PDB entries (CC0 1.0) with their DSSP "
           "strings from the MDAnalysis test suite (mdanalysistests 2.11.0); 8-state DSSP by mkdssp 4.2.2"}
SS3_INDEX = np.array(["HEC".index(SS3_OF_SS8[c]) for c in SS8_CLASSES])
QUICK = {"max_records": 4, "seeds": 1, "trees_seeds": 1, "trees_iter": 10, "trees_lrs": (0.1,), "independent": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--structuredb", default=str(REPO.parent / "shared" / "data" / "structuredb_sample.npz"))
    p.add_argument("--subset", default=str(REPO / "data" / "structuredb_subset.npz"),
                   help="the shipped subset, checked to be part of --structuredb")
    p.add_argument("--pdb-dssp", default=str(REPO / "data" / "pdb_dssp"), help="the 50 independent chains")
    p.add_argument("--out", default="runs/pretrained")
    p.add_argument("--cache", default=".cache/embeddings", help="embedding cache of the training runs")
    p.add_argument("--variants", nargs="+", default=[MODELS.get(n).name for n in MODELS.names()])
    p.add_argument("--seeds", type=int, default=None, help="seeds per variant (default 3)")
    p.add_argument("--trees-seeds", type=int, default=None, help="seeds of the trees baseline (default 3)")
    p.add_argument("--extra", default="", help="pa-geo fit overrides for every run, one string "
                                               "(e.g. \"--model.lr 0.003 --trainer.max_epochs 20\")")
    p.add_argument("--trees-lr", type=float, nargs="+", default=None,
                   help="the trees' learning rates, the best on validation is used (default: the demo's trees row "
                        "on the structure experiment, chosen there on validation as the adapter's rate is)")
    p.add_argument("--split-method", default=None, choices=["auto", "mmseqs", "kmer"],
                   help="sequence clustering (default auto: MMseqs2 when on PATH; kmer with --quick)")
    p.add_argument("--jobs", type=int, default=1, help="training runs at a time")
    p.add_argument("--threads", type=int, default=0, help="torch threads per run (default: cores / jobs)")
    p.add_argument("--independent", type=int, default=None,
                   help="score the first N independent chains (default: all 50; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke test: 4 chains per split, 1 epoch, 1 seed")
    p.add_argument("--ship", action="store_true", help="copy checkpoints + JSONs into the package, the card to docs")
    args = p.parse_args(argv)
    args.seeds = args.seeds or (QUICK["seeds"] if args.quick else 3)
    args.trees_seeds = args.trees_seeds or (QUICK["trees_seeds"] if args.quick else 3)
    args.trees_lr = tuple(args.trees_lr or (DEMO_MODELS["ca_geometry_trees"].learning_rate("structure"),))
    args.split_method = args.split_method or ("kmer" if args.quick else "auto")
    args.independent = args.independent or (QUICK["independent"] if args.quick else None)
    if args.quick and args.ship:
        p.error("--quick checkpoints are never shipped")
    return args


def prepare_data(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The tasks' data folder (``structuredb.npz`` link + ``split.csv``); the data facts of the JSON."""
    sample_path = Path(args.structuredb).resolve()
    sample = load_structuredb(sample_path)
    params = SplitParams(method=args.split_method)
    result = make_split(sample, independent_chains(Path(args.pdb_dssp)), params)
    root = out / "data"
    root.mkdir(parents=True, exist_ok=True)
    link = root / CHAINS_FILE
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(sample_path)
    write_split(result, root / SPLIT_FILE, params, sample_path.name)
    summary = split_summary(result)
    print(f"[pretrained] {len(sample)} chains; excluded {summary['excluded']} ({summary['excluded_by']}); split "
          f"{ {k: v['chains'] for k, v in summary['sizes'].items()} } by {result.method} -> {root / SPLIT_FILE}",
          flush=True)
    return {"root": str(root), "split_file": str(root / SPLIT_FILE),
            "data": {"sample": sample_path.name, "sample_chains": len(sample),
                     "subset": subset_check(sample, Path(args.subset)), "licence": LICENCE},
            "split": {**summary, "identity": params.identity, "coverage": params.coverage,
                      "fractions": list(params.fractions), "seed": params.seed}}


def variant_args(args: argparse.Namespace, variant: str, root: str, out: Path) -> list[str]:
    """``pa-geo fit`` arguments shared by every seed of ``variant``."""
    kind = MODELS.get(variant).input_kind
    ss8, rsa = TASK_NAMES[kind]
    configs = ["--config", str(CONFIGS / "multitask" / "demo_ss8_rsa.yaml")]
    if kind == "backbone":
        configs += ["--config", str(CONFIGS / "embeddings" / "offline.yaml")]
    with lightning_warnings_only():
        experiment = build_cli(configs)
    parsed = experiment.config
    heads = {k: v.as_dict() if hasattr(v, "as_dict") else v for k, v in (parsed["model"]["aux_heads"] or {}).items()}
    weights = dict(parsed["model"]["aux_tasks"] or {})
    if len(heads) != 1:
        raise SystemExit(f"the structure experiment config has {len(heads)} auxiliary heads, expected 1")
    (aux_head, *_), (weight, *_) = heads.values(), weights.values()
    embeddings = [{**e, "cache": args.cache} for e in experiment.datamodule.embeddings]
    quick = ["--data.max_records", str(QUICK["max_records"]), "--trainer.max_epochs", "1"] if args.quick else []
    return [*configs, "--data.task", ss8, "--data.data_root", root, "--data.aux_data_roots", json.dumps({rsa: None}),
            "--model.aux_tasks", json.dumps({rsa: weight}), "--model.aux_heads", json.dumps({rsa: aux_head}),
            "--data.extra_levels", json.dumps({"geom": GEOM_DIM}), "--data.embeddings", json.dumps(embeddings),
            "--data.graph_cache", str(out / "examples"), "--trainer.enable_model_summary", "false", *quick]


def portable(args: list[str]) -> str:
    """The command line of ``args`` with absolute paths written relative to the repository root."""
    return shlex.join(os.path.relpath(a, REPO) if os.path.isabs(a) else a for a in args)


def seed_args(run_dir: Path, seed: int, progress: bool) -> list[str]:
    return ["--trainer.default_root_dir", str(run_dir), "--seed_everything", str(seed), "--data.seed", str(seed),
            "--trainer.devices", "1", "--trainer.enable_progress_bar", json.dumps(progress)]


def ss8_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Q8, Q3, per-class recall and their mean of class indices ``pred``, ``y`` ``[M]`` (HGIEBTSC order)."""
    recall = {c: float((pred[y == k] == k).mean()) for k, c in enumerate(SS8_CLASSES) if (y == k).any()}
    return {"q8": float((pred == y).mean()), "q3": float((SS3_INDEX[pred] == SS3_INDEX[y]).mean()),
            "accuracy_macro": float(np.mean(list(recall.values()))), "recall": recall}


@torch.no_grad()
def test_scores(ckpt: Path, datamodule: Any) -> dict[str, Any]:
    """The checkpoint's test-split scores: 8-state (:func:`ss8_scores`) and RSA Pearson r."""
    module = PaGeoModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    datamodule.setup("test")
    out: dict[str, Any] = {}
    for (task, _), loader in zip(datamodule.eval_splits("test"), datamodule.test_dataloader()):
        preds, targets = [], []
        for batch in loader:
            step = module.step_outputs(batch)
            mask = step.mask.bool()
            preds.append(module.losses[task].denormalize(step.preds)[mask])
            targets.append(step.target[mask])
        p, t = torch.cat(preds), torch.cat(targets)
        if module.specs[task].label_type == "multiclass":
            out.update(ss8_scores(p.argmax(-1).numpy(), t.numpy()))
        else:
            out["rsa_pearson"] = float(pearsonr(p.reshape(-1).numpy(), t.reshape(-1).numpy())[0])
    return out


def trees_scores(datamodule: Any, seeds: int, quick: bool, rates: tuple[float, ...]) -> list[dict[str, Any]]:
    """The CA-geometry trees (the best of ``rates`` on validation) on the same stores, one row per seed."""
    ss8, rsa = datamodule.task_names
    arrays = {t: experiment_arrays(datamodule, t) for t in (ss8, rsa)}
    max_iter, rates = (QUICK["trees_iter"], QUICK["trees_lrs"]) if quick else (300, rates)
    rows = []
    for seed in range(seeds):
        cls = fit_on_validation("classification", arrays[ss8]["train"], arrays[ss8]["valid"], seed, rates, max_iter)
        reg = fit_on_validation("regression", arrays[rsa]["train"], arrays[rsa]["valid"], seed, rates, max_iter)
        X, y = arrays[ss8]["test"]
        Xr, yr = arrays[rsa]["test"]
        rows.append({"seed": seed, **ss8_scores(cls.predict(X).astype(np.int64), y.astype(np.int64)),
                     "rsa_pearson": float(pearsonr(reg.predict(Xr), yr)[0]),
                     "learning_rate": {"ss8": cls.learning_rate, "rsa": reg.learning_rate},
                     "fit_s": round(cls.fit_s + reg.fit_s, 1)})
    return rows


def mean_sd(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd (0 for one row) over rows of q8, q3, accuracy_macro, rsa_pearson and each recall."""
    keys = ["q8", "q3", "accuracy_macro", "rsa_pearson"]
    values = {k: [r[k] for r in rows] for k in keys}
    for c in SS8_CLASSES:
        values[f"recall_{c}"] = [r["recall"].get(c, float("nan")) for r in rows]

    def sd(v: list[float]) -> float:
        return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    return {"mean": {k: float(np.mean(v)) for k, v in values.items()}, "sd": {k: sd(v) for k, v in values.items()}}


def slim_checkpoint(src: Path, dst: Path) -> int:
    """Weights, init arguments and the ``pa_geo`` block of ``src`` (no optimiser, loops, callbacks, data paths)
    -> ``dst``, atomically; the embedding cache is left to the user (``pa-geo predict --cache``). Returns bytes."""
    ckpt = load_checkpoint(src)
    meta = dict(ckpt[META_KEY])
    meta["backbones"] = [{**b, "cache": ".cache/embeddings"} for b in meta["backbones"]]
    slim = {"state_dict": ckpt["state_dict"], "hyper_parameters": ckpt["hyper_parameters"], META_KEY: meta,
            "pytorch-lightning_version": ckpt.get("pytorch-lightning_version", "")}
    write_atomic(dst, lambda f: torch.save(slim, f))
    return dst.stat().st_size


def independent_scores(ckpt: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Predict the ``--pdb-dssp`` chains through ``pa-geo predict``'s path; Q8 / Q3 against their DSSP."""
    folder = Path(args.pdb_dssp)
    files = sorted(folder.glob("*.pdb.gz"))[: args.independent]
    out = work / f"{ckpt.stem}_independent.csv"
    predict_from_checkpoint(ckpt, files, out, cache=args.cache, progress=False)
    frame = pd.read_csv(out, keep_default_na=False, dtype={"id": str})
    return score_dssp(frame, read_dssp8_table(folder / "dssp8.tsv"), read_dssp3_strings(folder))


def run_variant(args: argparse.Namespace, variant: str, facts: dict[str, Any], out: Path) -> dict[str, Any]:
    base = variant_args(args, variant, facts["root"], out)
    extra = shlex.split(args.extra)
    threads = args.threads or max(1, (multiprocessing.cpu_count() or 1) // args.jobs)
    with lightning_warnings_only():
        cli = build_cli([*base, *extra, "--data.embed_missing", "true"])
        print(f"[pretrained] {variant}: embedding what {args.cache} lacks, building the example stores", flush=True)
        cli.datamodule.prepare_data()
    specs = [RunSpec(variant, "adapter", s, [*base, *seed_args(out / "runs" / variant / f"seed{s}", s, args.jobs == 1),
                                              *extra], str(out / "runs" / variant / f"seed{s}"), threads)
             for s in range(args.seeds)]
    rows = run_all(specs, args.jobs, initializer=register_training_tasks, prefix="[pretrained]")
    seeds = []
    for spec, row in zip(specs, rows):
        best_ckpt = Path(spec.run_dir) / "checkpoints" / "best.ckpt"
        scores = test_scores(best_ckpt, cli.datamodule)
        seeds.append({"seed": spec.seed, "best_val": row["best_val"], "best_epoch": load_checkpoint(best_ckpt)["epoch"],
                      "epochs": row["epochs"], "train_time_s": row["train_time_s"], **scores})
        print(f"[pretrained] {variant} seed {spec.seed}: test Q8 {scores['q8']:.4f} Q3 {scores['q3']:.4f} "
              f"RSA r {scores['rsa_pearson']:.4f}", flush=True)
    best = max(range(len(seeds)), key=lambda i: seeds[i]["best_val"])
    size = slim_checkpoint(Path(specs[best].run_dir) / "checkpoints" / "best.ckpt", out / f"{variant}.ckpt")
    trees = trees_scores(cli.datamodule, args.trees_seeds, args.quick, args.trees_lr)
    independent = independent_scores(out / f"{variant}.ckpt", args, out)
    print(f"[pretrained] {variant}: shipped seed {seeds[best]['seed']}; 50-chain Q8 {independent['q8']:.4f} "
          f"Q3 {independent.get('q3', float('nan')):.4f}; trees Q8 {mean_sd(trees)['mean']['q8']:.4f}", flush=True)
    return {"name": variant, "input_kind": MODELS.get(variant).input_kind, "quick": bool(args.quick),
            "data": facts["data"], "split": facts["split"],
            "recipe": {"command": f"pa-geo fit {portable(specs[best].args)}", "extra": extra,
                       "tasks": list(TASK_NAMES[MODELS.get(variant).input_kind])},
            "model": {"seeds": seeds, **mean_sd(seeds), "shipped_seed": seeds[best]},
            "trees": {"seeds": trees, **mean_sd(trees)}, "independent": independent,
            "checkpoint": {"file": f"{variant}.ckpt", "size_bytes": size}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    facts = prepare_data(args, out)
    register_training_tasks()
    results = {}
    for variant in args.variants:
        results[variant] = run_variant(args, variant, facts, out)
        (out / f"{variant}.json").write_text(json.dumps(results[variant], indent=1) + "\n")
    card = render_card(results)
    (out / CARD_PATH.name).write_text(card)
    if args.ship:
        FILES.mkdir(parents=True, exist_ok=True)
        for variant in results:
            shutil.copyfile(out / f"{variant}.ckpt", FILES / f"{variant}.ckpt")
            shutil.copyfile(out / f"{variant}.json", FILES / f"{variant}.json")
        (REPO / CARD_PATH).write_text(card)
    where = f"{FILES} and {REPO / CARD_PATH}" if args.ship else str(out)
    print(f"[pretrained] done in {time.perf_counter() - start:.0f} s: checkpoints, metrics and card in {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
