"""Your own data, end to end: a table of 300 shipped StructureDB chains (residue-level 3-state labels) through
``pa-geo fit`` (3 epochs) and ``pa-geo predict``, timed per stage: split, embed, graph build, train, predict.

The chains of ``data/structuredb_subset.npz`` (first 300: 54,160 residues, median length 163) are written as PDB
files (backbone N, CA, C, O; biotite's writer) into a work folder with ``labels.csv`` (``id, structure, label``:
one H / E / C symbol per residue from the shipped DSSP). Then, as ``pa-geo fit --config
configs/custom/residue_classification.yaml --data.table <work>/labels.csv --trainer.max_epochs 3`` does, in
process so each stage has its own clock:

* split: opening the table (no split column: MMseqs2 when on PATH, else the k-mer grouping; written next to it);
* embed: every protein through NEAR layer 8 and ProteinMPNN layer 3 into an empty cache (``prepare_data``);
* graph build: the example stores of the three splits (structures parsed, residue graphs built, written);
* train: ``trainer.fit`` (3 epochs, validation included);
* predict: ``pa-geo predict --ckpt_path best.ckpt --input <test chains>.pdb --output preds.csv`` from the
  checkpoint alone (embeddings cached by fit; structures read, graphs built, model run, CSV written), and the
  same once more with an empty cache (``predict, cold cache``: embeds the inputs too).

Prints a table and writes ``benchmarks/results/custom_table.json``.

    PYTHONPATH=. .venv/bin/python benchmarks/custom_table.py [--chains 300] [--epochs 3] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "custom_table.json"
SS3 = "HEC"


def write_backbone_pdb(protein, path: Path) -> None:
    """Write ``protein``'s backbone (N, CA, C, O per residue, its chain ids and numbering) as a PDB file."""
    import biotite.structure as struc
    from biotite.sequence import ProteinSequence
    from biotite.structure.io.pdb import PDBFile

    L = len(protein)
    atoms = struc.AtomArray(4 * L)
    atoms.coord = protein.backbone.reshape(-1, 3)
    atoms.atom_name = np.tile(["N", "CA", "C", "O"], L)
    atoms.element = np.tile(["N", "C", "C", "O"], L)
    atoms.res_name = np.repeat([ProteinSequence.convert_letter_1to3(a) for a in protein.sequence], 4)
    atoms.res_id = np.repeat(protein.residue_numbers, 4)
    atoms.chain_id = np.repeat(protein.chain_ids.astype(str), 4)
    atoms.hetero = np.zeros(4 * L, bool)
    pdb = PDBFile()
    pdb.set_structure(atoms)
    pdb.write(str(path))


def write_table(work: Path, chains: int) -> tuple[Path, dict[str, Path]]:
    """PDB files of the first ``chains`` shipped StructureDB chains + ``labels.csv``; returns (table, id -> file)."""
    from pa_geo.formats.structuredb import load_structuredb

    (work / "pdb").mkdir(parents=True, exist_ok=True)
    rows, files = ["id,structure,label"], {}
    for rec in load_structuredb(ROOT / "data" / "structuredb_subset.npz", max_chains=chains):
        pid = rec.protein.id
        path = work / "pdb" / f"{pid}.pdb"
        write_backbone_pdb(rec.protein, path)
        rows.append(f"{pid},pdb/{pid}.pdb,{''.join(SS3[k] for k in rec.ss3)}")
        files[pid] = path
    table = work / "labels.csv"
    table.write_text("\n".join(rows) + "\n")
    return table, files


class Clock:
    """``with clock("stage"):`` adds the stage's wall seconds to ``clock.seconds``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage = ""

    def __call__(self, stage: str) -> "Clock":
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self._stage] = time.perf_counter() - self._t0


def run(chains: int, epochs: int, work: Path) -> dict:
    """Every stage on ``chains`` chains in ``work`` (made empty first); returns the results dict."""
    import torch

    from pa_geo.train.cli import build_cli
    from pa_geo.train.predict import predict_from_checkpoint

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chdir(work)  # the template's cache and store paths are relative, as for a user
    clock = Clock()
    with clock("write PDB files + table (set-up)"):
        table, files = write_table(work, chains)
    with clock("split"):
        cli = build_cli(["--config", str(ROOT / "configs" / "custom" / "residue_classification.yaml"),
                         "--data.table.path", str(table), "--trainer.max_epochs", str(epochs),
                         "--trainer.default_root_dir", str(work / "runs"), "--trainer.enable_progress_bar", "false"],
                        run=False)
    dm, model, trainer = cli.datamodule, cli.model, cli.trainer
    counts = _split_counts(table)
    with clock("embed"):
        report = dm.embed(progress=False)
    dm.embed_missing = False  # done: fit's prepare_data only builds the stores (timed on their own below)
    with clock("graph build"):
        for split in dm.specs["table"].splits:
            dm.store("table", split)
    with clock("train"):
        trainer.fit(model, dm)
    ckpt = work / "runs" / "checkpoints" / "best.ckpt"
    test_files = [files[i] for i in _split_ids(table, "test")]
    with clock("predict"):
        predicted = predict_from_checkpoint(ckpt, test_files, work / "preds.csv", progress=False)
    with clock("predict, cold cache"):
        predict_from_checkpoint(ckpt, test_files, work / "preds_cold.csv", cache=str(work / "cold_cache"),
                                progress=False)
    residues = {split: sum(len(lbl) for i, lbl in _labels(table).items() if i in set(_split_ids(table, split)))
                for split in ("train", "valid", "test")}
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return {"chains": chains, "epochs": epochs, "rows": counts, "residues": residues,
            "split_method": _split_method(table), "embedded": report.embedded, "seconds": clock.seconds,
            "predicted_rows": predicted.rows, "predicted_proteins": predicted.proteins,
            "val_metrics": metrics, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "device": "cuda" if torch.cuda.is_available() else "cpu"}


def _split_file_rows(table: Path) -> list[list[str]]:
    from pa_geo.tables.similarity_split import split_file_for

    lines = split_file_for(table).read_text().splitlines()
    return [line.split(",") for line in lines if not line.startswith(("#", "id,"))]


def _split_ids(table: Path, split: str) -> list[str]:
    return [row[0] for row in _split_file_rows(table) if row[1] == split]


def _split_counts(table: Path) -> dict[str, int]:
    return {split: len(_split_ids(table, split)) for split in ("train", "valid", "test")}


def _split_method(table: Path) -> str:
    from pa_geo.tables.similarity_split import split_file_for

    for line in split_file_for(table).read_text().splitlines():
        if line.startswith("# method:"):
            return line.split(":", 1)[1].strip()
    return ""


def _labels(table: Path) -> dict[str, str]:
    return {row.split(",")[0]: row.split(",")[2] for row in table.read_text().splitlines()[1:]}


def report(result: dict) -> str:
    """The results table: seconds per stage, share of fit, and per-protein / per-residue rates."""
    s = result["seconds"]
    fit = sum(s[k] for k in ("split", "embed", "graph build", "train"))
    n, res = result["chains"], sum(result["residues"].values())
    test = result["predicted_proteins"]
    rows = [("write PDB files + table (set-up)", s["write PDB files + table (set-up)"], "", f"{n} chains"),
            (f"split ({result['split_method'].split()[0]})", s["split"], f"{s['split'] / fit:.0%}", f"{n} chains"),
            ("embed (NEAR 8 + ProteinMPNN 3)", s["embed"], f"{s['embed'] / fit:.0%}",
             f"{res / s['embed']:.0f} residues/s"),
            ("graph build (3 example stores)", s["graph build"], f"{s['graph build'] / fit:.0%}",
             f"{n / s['graph build']:.1f} chains/s"),
            (f"train ({result['epochs']} epochs, with validation)", s["train"], f"{s['train'] / fit:.0%}",
             f"{result['epochs'] * result['rows']['train'] / s['train']:.1f} train chains/s"),
            ("fit total", fit, "100%", ""),
            (f"predict ({test} test chains, cached)", s["predict"], "", f"{test / s['predict']:.1f} chains/s"),
            ("predict, cold cache (embeds too)", s["predict, cold cache"], "",
             f"{test / s['predict, cold cache']:.1f} chains/s")]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'stage':<{width}}  {'seconds':>8}  {'of fit':>6}  rate", "-" * (width + 40)]
    lines += [f"{name:<{width}}  {sec:8.1f}  {share:>6}  {rate}" for name, sec, share, rate in rows]
    lines.append(f"rows train/valid/test {result['rows']['train']}/{result['rows']['valid']}/{result['rows']['test']}"
                 f", {res} residues; val metrics after fit: "
                 + ", ".join(f"{k} {v:.3f}" for k, v in sorted(result["val_metrics"].items())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work", default=None, help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    sys.argv[1:] = []  # the fit below is configured in process, not from this script's arguments
    out = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="pa_geo_custom_table_"))
    try:
        result = run(args.chains, args.epochs, work)
    finally:
        os.chdir(ROOT)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = report(result)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "table": text}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
