"""``pa-geo predict --ckpt_path best.ckpt --input new/*.pdb --output preds.csv``: predictions from a checkpoint
alone (no config), through the data module and the prediction writer ``pa-geo predict --config`` uses.

The checkpoint carries the model's init arguments, the task (level, type, class names) and the data side (backbones
with their weights fingerprints, layers, cache, graph recipe: :mod:`pa_geo.train.checkpoint_meta`). Steps: rebuild
the model (``PaGeoModule.load_from_checkpoint``); build the backbones here and refuse a checkpoint whose weights
fingerprint differs; a :class:`~pa_geo.train.datamodule.PaGeoDataModule` of the checkpoint's task reads the inputs
(structure files, FASTA files, tables: :mod:`pa_geo.train.predict_inputs`) and embeds what the cache lacks; a
Lightning ``predict`` writes the rows with :class:`~pa_geo.train.predictions.PredictionCSVWriter`. Inputs that
cannot be read or embedded are listed one line each; :func:`predict_from_checkpoint` is what any other source of a
checkpoint (a file, a checkpoint shipped with the package) calls.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

import pytorch_lightning as pl
import torch

from pa_geo.errors import ConfigError
from pa_geo.tasks.spec import spec_record
from pa_geo.train.checkpoint_meta import check_backbones
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.module import PaGeoModule
from pa_geo.train.notices import lightning_warnings_only
from pa_geo.train.predictions import PredictionCSVWriter


@dataclass
class PredictSummary:
    """What :func:`predict_from_checkpoint` did: ``rows`` written, ``proteins`` (inputs) predicted, ``refused``:
    one line per input or protein left out; ``seconds``: wall time per stage (``load`` the checkpoint and its
    backbones, ``read`` the inputs, ``embed`` what the cache lacks, ``graph`` the example store, ``model`` the
    batches through the model, ``write`` the CSV)."""

    rows: int = 0
    proteins: int = 0
    refused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckpointModel:
    """A checkpoint ready to predict: the model, its ``pa_geo`` block (``meta``, with the cache in use), the built
    ``(SourceConfig, Backbone)`` pairs whose weights fingerprints were checked, and the device."""

    module: PaGeoModule
    meta: dict[str, Any]
    built: list[Any]
    device: str
    path: Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``pa-geo predict``'s options when it runs from a checkpoint alone."""
    parser.add_argument("--ckpt_path", "--ckpt-path", required=True, help="checkpoint written by pa-geo fit")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="structure files (PDB/mmCIF, .gz ok), FASTA files, tables (CSV/TSV/Parquet) or folders")
    parser.add_argument("--output", required=True, help="CSV file to write")
    parser.add_argument("--cache", default=None, help="embedding cache root (default: the one the model was "
                                                      "trained with)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--batch-nodes", type=int, default=None, help="nodes per batch (default: as in training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_for_prediction(ckpt_path: str | Path, cache: str | None = None,
                        device: str | None = None) -> CheckpointModel:
    """Rebuild the model of ``ckpt_path`` (read by the weights-only loader, ``pa_geo.train.checkpoints``), build its
    backbones on ``device`` and refuse (one line) weights whose fingerprint differs from the recorded one.
    ``cache`` replaces the embedding cache the model was trained with."""
    ckpt_path = Path(ckpt_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    module = PaGeoModule.load_from_checkpoint(ckpt_path, map_location="cpu")
    meta = module.checkpoint_meta(str(ckpt_path))
    if cache is not None:
        meta["backbones"] = [{**b, "cache": str(cache)} for b in meta["backbones"]]
    return CheckpointModel(module, meta, check_backbones(meta, ckpt_path, device), device, ckpt_path)


def input_datamodule(model: CheckpointModel, inputs: Sequence[str | Path], batch_nodes: int | None = None,
                     progress: bool = True, embed: bool = True) -> PaGeoDataModule:
    """The data module of the checkpoint's task on ``inputs`` (read now), with every embedding the cache lacked
    computed (``embed``); after ``setup("predict")`` its ``predict_dataloader()`` gives the batches the model
    takes."""
    meta = model.meta
    graph = {"kind": meta["graph"]["kind"], "ligand": meta["graph"].get("ligand"), **meta["graph"].get("kwargs", {})}
    sources = [{k: b[k] for k in ("cache", "backbone", "layers", "options") if k in b} for b in meta["backbones"]]
    module = model.module
    data = PaGeoDataModule(task=module.task, task_record=spec_record(module.specs[module.task]), embeddings=sources,
                           graph=graph, batch_nodes=int(batch_nodes or meta.get("batch_nodes") or 4096),
                           predict_inputs=[str(p) for p in inputs])
    if embed:
        data.embed(progress=progress, built=model.built)
    return data


def predict_from_checkpoint(ckpt_path: str | Path, inputs: Sequence[str | Path], output: str | Path,
                            cache: str | None = None, device: str | None = None, batch_nodes: int | None = None,
                            progress: bool = True, log: TextIO | None = None,
                            model: CheckpointModel | None = None) -> PredictSummary:
    """Predict ``inputs`` with the checkpoint at ``ckpt_path`` and write ``output`` (CSV, atomically).

    ``cache`` replaces the embedding cache the model was trained with; ``log`` (default stderr) gets one
    ``refused <input>: <reason>`` line per input left out; ``model`` a :func:`load_for_prediction` of the same
    checkpoint, already loaded (then ``cache`` and ``device`` are its own). A checkpoint of other backbone weights,
    missing weights, or nothing left to predict is a one-line :class:`~pa_geo.errors.PaGeoError`.
    """
    log = log or sys.stderr
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    model = model or load_for_prediction(ckpt_path, cache, device)
    seconds["load"], clock = time.perf_counter() - clock, time.perf_counter()
    data = input_datamodule(model, inputs, batch_nodes, progress, embed=False)
    seconds["read"], clock = time.perf_counter() - clock, time.perf_counter()
    data.embed(progress=progress, built=model.built)
    seconds["embed"], clock = time.perf_counter() - clock, time.perf_counter()
    if not data.inputs.records:
        _report(data.inputs.refused, log)
        raise ConfigError(f"nothing to predict: every input was refused ({len(data.inputs.refused)}; reasons above)")
    data.setup("predict")  # the example store of the inputs (graphs)
    seconds["graph"], clock = time.perf_counter() - clock, time.perf_counter()
    writer = PredictionCSVWriter(output=str(output))
    with lightning_warnings_only():
        trainer = pl.Trainer(accelerator="gpu" if model.device.startswith("cuda") else "cpu", devices=1,
                             logger=False, enable_checkpointing=False, enable_model_summary=False,
                             enable_progress_bar=progress, callbacks=[writer],
                             default_root_dir=str(Path(output).parent))
        trainer.predict(model.module, datamodule=data, return_predictions=False)
    seconds["write"] = writer.write_s
    seconds["model"] = time.perf_counter() - clock - writer.write_s
    _report(data.inputs.refused, log)
    predicted = len(data.dataset(data.task, data.predicted_split))
    return PredictSummary(writer.rows, predicted, list(data.inputs.refused), seconds)


def _report(refused: list[str], log: TextIO) -> None:
    for line in refused:
        print(f"refused {line}", file=log)


def run(args: argparse.Namespace) -> int:
    """Execute ``pa-geo predict`` from a checkpoint; 1 when any input was refused, else 0."""
    summary = predict_from_checkpoint(args.ckpt_path, args.input, args.output, args.cache, args.device,
                                      args.batch_nodes, progress=not args.no_progress)
    note = f"; refused {len(summary.refused)} (reasons above)" if summary.refused else ""
    print(f"predicted {summary.proteins} input(s): {summary.rows} row(s) -> {args.output}{note}")
    return 1 if summary.refused else 0
