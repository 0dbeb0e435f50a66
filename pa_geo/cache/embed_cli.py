"""``pa-geo embed``: run a frozen backbone once per protein into the LMDB cache (or merge shard caches).

    pa-geo embed --backbone esm1b --layers 21 33 --input data/*.pdb seqs.fasta --cache cache/ [--shard 0/4]
    pa-geo embed --backbone hf --model facebook/esm2_t33_650M_UR50D --input seqs.fasta --cache cache/
    pa-geo embed --backbone esm2 --input data/ --cache cache/ --devices 4 --strategy ddp [--num_nodes 2]
    pa-geo embed --merge shard0/ shard1/ --cache cache/
    pa-geo embed --config configs/<task>.yaml [--data.* ...]   # what a training config reads (pa_geo.train.embed_config)

Bad inputs are reported one line each and skipped; the exit code is 1 when anything was refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pa_geo.backbones  # noqa: F401  - registers the backbones
from pa_geo.backbones.base import get_backbone
from pa_geo.cache.merge import merge_caches
from pa_geo.cache.runner import embed_proteins
from pa_geo.errors import CacheError, ConfigError, PaGeoError
from pa_geo.io import read_fasta, read_structure
from pa_geo.io.protein import Protein

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fasta.gz", ".fa.gz", ".faa.gz")
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``pa-geo embed``'s options on ``parser``."""
    parser.epilog = ("pa-geo embed --config configs/<task>.yaml [--data.* overrides] embeds everything a training "
                     "config reads (every protein of its task, every backbone and layer of data.embeddings)")
    parser.add_argument("--backbone", help="registered backbone name (esm1b, esm_if1, hf, proteinmpnn, ...)")
    parser.add_argument("--layers", nargs="+", default=None,
                        help="layer indices to store, or 'all' (default: the backbone's default layer)")
    parser.add_argument("--model", default=None,
                        help="checkpoint path or hub name (fair-esm), local directory or hub id (--backbone hf)")
    parser.add_argument("--input", nargs="+", default=[], metavar="PATH",
                        help="structure files (PDB/mmCIF, .gz ok), FASTA files, or directories of them")
    parser.add_argument("--cache", required=True, help="cache root directory (one LMDB per backbone inside)")
    parser.add_argument("--shard", default=None, metavar="I/N", help="embed only shard I of N (0-based)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="padded residues per forward pass (default: the backbone's measured value for the "
                             "device)")
    parser.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16", help="storage precision")
    parser.add_argument("--merge", nargs="+", default=None, metavar="SRC",
                        help="merge these cache roots into --cache instead of embedding")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("many devices (Lightning predict; any of these switches it on)")
    group.add_argument("--devices", default=None, help="devices per node (an int, or 'auto')")
    group.add_argument("--num_nodes", type=int, default=None, help="number of nodes")
    group.add_argument("--strategy", default=None, help="Lightning strategy: ddp (default when > 1 rank), ...")
    group.add_argument("--accelerator", default=None, help="cpu, gpu, cuda, ... (default: auto)")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> ``(I, N)``; :class:`ConfigError` unless ``0 <= I < N``."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def parse_layers(values: list[str] | None) -> list[int] | str | None:
    """``None`` | ``["all"]`` -> ``"all"`` | ints."""
    if values is None:
        return None
    if values == ["all"]:
        return "all"
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ConfigError(f"--layers {' '.join(values)}: expected integers or 'all'") from None


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; directories -> their structure / FASTA files (sorted, recursive)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()
                              and f.name.lower().endswith(FASTA_SUFFIXES + STRUCTURE_SUFFIXES)))
        else:
            out.append(p)
    return out


def read_inputs(paths: list[Path]) -> tuple[list[Protein], list[tuple[str, str]]]:
    """Proteins from every readable input and ``(path, reason)`` for each one that is not."""
    proteins: list[Protein] = []
    bad: list[tuple[str, str]] = []
    for p in paths:
        try:
            if p.name.lower().endswith(FASTA_SUFFIXES):
                proteins.extend(read_fasta(p))
            else:
                proteins.append(read_structure(p))
        except PaGeoError as err:
            bad.append((str(p), str(err)))
        except OSError as err:
            bad.append((str(p), f"{p}: {err.strerror or err}"))
    return proteins, bad


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _run_merge(args: argparse.Namespace) -> int:
    copied = merge_caches(args.merge, args.cache)
    print(f"merged {len(args.merge)} cache(s) into {args.cache}")
    print(_table([(name, f"{n} entries") for name, n in copied.items()]))
    return 0


def _lightning_requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("devices", "num_nodes", "strategy", "accelerator"))


def _embed(args: argparse.Namespace, backbone, proteins: list[Protein], shard: tuple[int, int] | None):
    """The run's summary (None on Lightning ranks other than global rank 0, which reports)."""
    if not _lightning_requested(args):
        return embed_proteins(backbone, proteins, args.cache, batch_tokens=args.batch_tokens, shard=shard,
                              progress=not args.no_progress, dtype=args.dtype)
    if shard is not None:
        raise ConfigError("--shard and --devices/--num_nodes/--strategy: use one way of splitting the work")
    from pa_geo.cache.distributed import embed_distributed  # imports Lightning: only for multi-device runs

    devices = args.devices or "auto"
    return embed_distributed(backbone, proteins, args.cache, batch_tokens=args.batch_tokens, dtype=args.dtype,
                             devices=int(devices) if str(devices).isdigit() else devices,
                             num_nodes=args.num_nodes or 1, strategy=args.strategy or "auto",
                             accelerator=args.accelerator or "auto", progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    """Execute ``pa-geo embed``; returns 1 when any input or protein was refused, else 0."""
    if args.merge:
        return _run_merge(args)
    if not args.backbone or not args.input:
        raise ConfigError("pa-geo embed needs --backbone and --input (or --merge SRC... --cache DEST)")
    shard = parse_shard(args.shard)
    kwargs: dict = {}
    layers = parse_layers(args.layers)
    if layers is not None:
        kwargs["layers"] = layers
    if args.model is not None:
        kwargs["model"] = args.model
    try:
        backbone = get_backbone(args.backbone, **kwargs)
    except TypeError as err:
        raise ConfigError(f"backbone {args.backbone}: unsupported option ({err})") from None
    proteins, bad = read_inputs(expand_inputs(args.input))
    if not proteins and not bad:
        raise CacheError("no inputs found in " + " ".join(args.input))
    summary = _embed(args, backbone, proteins, shard)
    if summary is None:
        return 0
    for path, reason in bad:  # reason already names the file
        print(f"refused {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
    for pid, reason in summary.refused:
        print(f"refused {pid}: {reason}", file=sys.stderr)
    refused = len(bad) + len(summary.refused)
    rows = [("backbone", f"{backbone.id} layers {' '.join(map(str, backbone.layers))}"),
            ("cache", str(Path(args.cache))),
            ("embedded", str(summary.embedded)),
            ("already cached", str(summary.cached)),
            ("refused", str(refused) + (" (reasons above)" if refused else "")),
            ("residues/s", f"{summary.residues_per_s:.1f} ({summary.residues} residues in {summary.seconds:.1f} s)")]
    if shard is not None:
        rows.insert(2, ("shard", f"{shard[0]}/{shard[1]} ({summary.other_shards} proteins left to other shards)"))
    print(_table(rows))
    return 1 if refused else 0
