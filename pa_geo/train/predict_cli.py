"""``pa-geo predict --ckpt_path best.ckpt --input new/*.pdb --output preds.csv``: predictions from a checkpoint
alone (no config).

The checkpoint carries the model's init arguments, the task (level, type, class names) and the data side
(backbones with their weights fingerprints, layers, cache, graph recipe: :mod:`pa_geo.train.checkpoint_meta`).
Steps: rebuild the model (``PaGeoModule.load_from_checkpoint``); build the backbones here and refuse a checkpoint
whose weights fingerprint differs; read the inputs (structure files, FASTA files, tables:
:func:`pa_geo.datasets.table.inputs.read_predict_inputs`); embed what the cache lacks; build graphs; run the model
batch by batch (node budget); write the CSV atomically. Rows (:mod:`pa_geo.train.predict_rows`): one per protein
(protein / pair level) or one per residue in chain order (``id, chain, residue_number, insertion_code, residue``),
then ``prediction`` (class name as in the training table, or the value) and ``prob_<class>`` for classification.
Inputs that cannot be read or embedded are listed one line each on stderr; the exit code is then 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from pa_geo.errors import ConfigError


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


def _budget_chunks(items: Sequence[Any], sizes: Sequence[int], budget: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    total = 0
    for item, size in zip(items, sizes):
        if chunk and total + size > budget:
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += size
    if chunk:
        yield chunk


def sequence_only(protein: Any) -> Any:
    """``protein`` without coordinates or atoms (chains, numbering and sequence kept)."""
    import dataclasses

    import numpy as np

    from pa_geo.io.protein import AtomTable

    if not protein.has_structure:
        return protein
    return dataclasses.replace(protein, backbone=np.full_like(protein.backbone, np.nan), atoms=AtomTable.empty(),
                               has_structure=False)


def predict_files(ckpt_path: str | Path, inputs: Sequence[str | Path], output: str | Path, cache: str | None = None,
                  device: str | None = None, batch_nodes: int | None = None, progress: bool = True,
                  log: Any = None) -> dict[str, Any]:
    """Predict ``inputs`` with the checkpoint at ``ckpt_path`` and write ``output``; returns a summary
    (``rows``, ``proteins``, ``refused``: one line per input or protein that was left out).

    ``log`` (default stderr) gets the refused lines.
    """
    import torch
    from torch_geometric.data import Batch

    from pa_geo.cache.ensure import embed_missing
    from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource
    from pa_geo.datasets.table.inputs import read_predict_inputs
    from pa_geo.train.checkpoint_meta import check_backbones
    from pa_geo.train.graphs import GraphBuilder
    from pa_geo.train.module import PaGeoModule
    from pa_geo.train.predict_rows import with_residue_columns, write_predictions

    log = log or sys.stderr
    ckpt_path = Path(ckpt_path)  # read and checked by load_from_checkpoint (pa_geo.train.checkpoints)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    module = PaGeoModule.load_from_checkpoint(ckpt_path, map_location="cpu")
    meta = module.checkpoint_meta(ckpt_path)
    if cache is not None:
        meta["backbones"] = [{**b, "cache": cache} for b in meta["backbones"]]
    built = check_backbones(meta, ckpt_path, device)
    kind = module.kinds[module.task]
    records, refused = read_predict_inputs(list(map(str, inputs)), "pair" if kind.num_proteins == 2 else "protein")
    spec = module.specs[module.task]
    if not spec.options.get("has_structures", spec.input_kind != "sequence"):
        for r in records:  # a sequence model: graphs as in training, whatever files the proteins came from
            r.proteins = [sequence_only(p) for p in r.proteins]
    report = embed_missing(built, [p for r in records for p in r.proteins], progress=progress)
    bad_ids = {pid for _, pid, _ in report.refused}
    refused += [f"{pid}: {reason}" for _, pid, reason in report.refused]
    records = [r for r in records if not any(p.id in bad_ids for p in r.proteins)]
    for line in refused:
        print(f"refused {line}", file=log)
    if not records:
        raise ConfigError(f"nothing to predict: every input was refused ({len(refused)}; reasons above)")

    builder = GraphBuilder(**{"kind": meta["graph"]["kind"], "ligand": meta["graph"].get("ligand"),
                              **meta["graph"].get("kwargs", {})})
    attach = AttachEmbeddings([EmbeddingSource(b["cache"], b["backbone"], b["layers"]) for b in meta["backbones"]])
    examples = [attach(kind.data_class.from_parts(kind.graph_parts(r, builder), record_id=str(r.id)))
                for r in records]
    module.to(device).eval()
    frames = []
    by_id = {str(r.id): r for r in records}
    budget = int(batch_nodes or meta.get("batch_nodes") or 4096)
    with torch.inference_mode():
        for chunk in _budget_chunks(examples, [kind.num_nodes(d) for d in examples], budget):
            batch = Batch.from_data_list(chunk).to(device)
            out = kind.predict(module(batch), module.losses[module.task])
            frame = kind.prediction_frame(batch, out)
            if "residue_index" in frame.columns and "atom2residue" in batch:
                raise ConfigError(f"{ckpt_path}: per-residue rows of an atom-graph model are not written by pa-geo "
                                  f"predict --input (one row per atom); use pa-geo predict --config")
            frames.append(with_residue_columns(frame, by_id))
    rows = write_predictions(frames, Path(output))
    return {"rows": rows, "proteins": len(records), "refused": refused}


def run(args: argparse.Namespace) -> int:
    """Execute ``pa-geo predict`` from a checkpoint; 1 when any input was refused, else 0."""
    summary = predict_files(args.ckpt_path, args.input, args.output, args.cache, args.device, args.batch_nodes,
                            progress=not args.no_progress)
    note = f"; refused {len(summary['refused'])} (reasons above)" if summary["refused"] else ""
    print(f"predicted {summary['proteins']} input(s): {summary['rows']} row(s) -> {args.output}{note}")
    return 1 if summary["refused"] else 0
