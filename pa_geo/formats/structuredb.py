"""ProMod3 StructureDB chains with per-residue DSSP and solvent accessibility, from the ``.npz`` export.

The ``.npz`` holds (numpy arrays, no pickle): ``ids`` [N] str (``PDBID_CHAIN``), ``seqs`` [N] str, ``lengths`` [N]
int, ``start_resnum`` [N] int, ``dssp`` [N] str (8-state), ``coords`` [sum(lengths), 5, 3] float32 (N, CA, C, O,
virtual CB), ``sasa`` [sum(lengths)] int16 (A^2). :func:`load_structuredb` turns each chain into a
:class:`~pa_geo.io.Protein` plus labels; :func:`write_structuredb_subset` writes a subset of such a file.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pa_geo.errors import DatasetError
from pa_geo.io.protein import AMINO_ACIDS, BACKBONE_ATOMS, AtomTable, Protein
from pa_geo.io.structure import chain_breaks_from_backbone

ARRAYS = ("ids", "seqs", "lengths", "start_resnum", "dssp", "coords", "sasa")
# Tien et al. 2013 (PLoS ONE 8:e80635), theoretical maximum accessible surface area per residue, A^2.
MAX_ASA_TIEN2013: dict[str, float] = {
    "A": 129.0, "R": 274.0, "N": 195.0, "D": 193.0, "C": 167.0, "Q": 225.0, "E": 223.0, "G": 104.0,
    "H": 224.0, "I": 197.0, "L": 201.0, "K": 236.0, "M": 224.0, "F": 240.0, "P": 159.0, "S": 155.0,
    "T": 172.0, "W": 285.0, "Y": 263.0, "V": 174.0,
}
RSA_CLIP = 1.5
SS3_CLASSES = ("H", "E", "C")
SS8_TO_SS3 = {"H": 0, "G": 0, "I": 0, "E": 1, "B": 1}  # everything else (T, S, C, P, '-', ' ') -> 2 (coil)
# DSSP's state letters (DSSP 4's P = polyproline II; coil is ' ', written C or '-' by many files)
DSSP_LETTERS = "HGIEBTSCP- "
SUBSET_RULE = dict(min_length=40, max_length=400, step=3)


@dataclass
class StructureDBRecord:
    """One chain: ``protein`` (backbone [L, 4, 3]), ``dssp8`` (str, L), ``ss3`` [L] int64 (0=H, 1=E, 2=C) and
    ``rsa`` [L] float32 relative solvent accessibility (SASA / Tien 2013 max ASA, clipped to [0, 1.5])."""

    protein: Protein
    dssp8: str
    ss3: np.ndarray
    rsa: np.ndarray


def dssp8_to_ss3(dssp8: str) -> np.ndarray:
    """``[L]`` int64 three-state labels: H, G, I -> 0 (helix); E, B -> 1 (strand); anything else -> 2 (coil)."""
    return np.fromiter((SS8_TO_SS3.get(c, 2) for c in dssp8), dtype=np.int64, count=len(dssp8))


def relative_sasa(sequence: str, sasa: np.ndarray) -> np.ndarray:
    """``[L]`` float32 SASA divided by the Tien et al. 2013 theoretical max ASA of each residue, clipped to
    [0, 1.5]. Residues outside the 20 standard amino acids use the mean of the table."""
    fallback = float(np.mean(list(MAX_ASA_TIEN2013.values())))
    max_asa = np.fromiter((MAX_ASA_TIEN2013.get(a, fallback) for a in sequence), np.float64, len(sequence))
    return np.clip(np.asarray(sasa, np.float64) / max_asa, 0.0, RSA_CLIP).astype(np.float32)


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: StructureDB file not found (the repository ships data/structuredb_subset.npz)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [a for a in ARRAYS if a not in npz.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}")
            return {a: npz[a] for a in ARRAYS}
    except DatasetError:
        raise
    except Exception as err:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise DatasetError(f"{path}: not a readable .npz ({type(err).__name__}: {err})") from None


def _check(path: Path, d: dict[str, np.ndarray]) -> np.ndarray:
    n, lengths = len(d["ids"]), d["lengths"].astype(np.int64)
    for a in ("seqs", "lengths", "start_resnum", "dssp"):
        if len(d[a]) != n:
            raise DatasetError(f"{path}: array {a} has {len(d[a])} entries for {n} ids")
    total = int(lengths.sum())
    if d["coords"].shape != (total, 5, 3) or d["sasa"].shape != (total,):
        raise DatasetError(f"{path}: coords {d['coords'].shape} / sasa {d['sasa'].shape} do not match "
                           f"sum(lengths) = {total}")
    return np.concatenate([[0], np.cumsum(lengths)])


def _record(path: Path, d: dict[str, np.ndarray], i: int, start: int, stop: int) -> StructureDBRecord:
    rid, seq, dssp = str(d["ids"][i]), str(d["seqs"][i]), str(d["dssp"][i])
    L = stop - start
    if len(seq) != L or len(dssp) != L:
        raise DatasetError(f"{path}[{rid}]: sequence/DSSP lengths {len(seq)}/{len(dssp)} != {L}")
    if set(seq) - set(AMINO_ACIDS + "X"):
        raise DatasetError(f"{path}[{rid}]: non-amino-acid letters {sorted(set(seq) - set(AMINO_ACIDS + 'X'))}")
    chain = rid.split("_", 1)[1] if "_" in rid else "A"
    backbone = np.ascontiguousarray(d["coords"][start:stop, :4], dtype=np.float32)
    chain_ids = np.full(L, chain, dtype=object)
    # Atom table: the four real backbone atoms of each residue (StructureDB's CB is virtual, so not an atom).
    names = np.tile(np.array(BACKBONE_ATOMS, dtype=object), L)
    atoms = AtomTable(np.array([n[0] for n in names], dtype=object), names,
                      np.repeat(np.array(list(seq), dtype=object), 4), np.repeat(np.arange(L, dtype=np.int64), 4),
                      backbone.reshape(-1, 3).copy(), np.zeros(4 * L, bool), np.full(4 * L, chain, dtype=object))
    protein = Protein(rid, seq, chain_ids, int(d["start_resnum"][i]) + np.arange(L, dtype=np.int64),
                      np.full(L, "", dtype=object), backbone, chain_breaks_from_backbone(backbone, chain_ids),
                      atoms, source=f"{path}[{rid}]")
    return StructureDBRecord(protein, dssp, dssp8_to_ss3(dssp), relative_sasa(seq, d["sasa"][start:stop]))


def load_structuredb(path: str | os.PathLike, max_chains: int | None = None) -> list[StructureDBRecord]:
    """Load the StructureDB chains of the ``.npz`` at ``path``, the first ``max_chains`` only.

    Residue numbers are ``start_resnum + 0..L-1`` (StructureDB stores consecutive numbering, no insertion codes);
    chain breaks come from the backbone geometry. Raises :class:`DatasetError` (one line, file and record) for a
    missing/unreadable file, missing arrays or inconsistent lengths.
    """
    path = Path(path)
    d = _open_npz(path)
    offsets = _check(path, d)
    n = len(d["ids"]) if max_chains is None else min(int(max_chains), len(d["ids"]))
    return [_record(path, d, i, int(offsets[i]), int(offsets[i + 1])) for i in range(n)]


def subset_indices(ids: np.ndarray, lengths: np.ndarray, min_length: int = 40, max_length: int = 400,
                   step: int = 3) -> np.ndarray:
    """The shipped subset rule: chains with ``min_length <= L <= max_length``, sorted by id, every ``step``-th
    (starting with the first); returned as ``[K]`` int64 indices in the source's order."""
    eligible = np.flatnonzero((lengths >= min_length) & (lengths <= max_length))
    by_id = eligible[np.argsort(np.asarray(ids)[eligible].astype(str), kind="stable")]
    return np.sort(by_id[::step]).astype(np.int64)


def write_structuredb_subset(src: str | os.PathLike, dst: str | os.PathLike, **rule: int) -> int:
    """Write the :func:`subset_indices` subset of ``src`` to ``dst`` (compressed .npz, atomically: temp + rename).

    String arrays are stored at their subset width; coords stay float32 [*, 5, 3]. Returns the number of chains.
    """
    src, dst = Path(src), Path(dst)
    d = _open_npz(src)
    offsets = _check(src, d)
    keep = subset_indices(d["ids"], d["lengths"], **{**SUBSET_RULE, **rule})
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in keep])
    out = {a: d[a][keep] for a in ("ids", "seqs", "lengths", "start_resnum", "dssp")}
    for a in ("ids", "seqs", "dssp"):
        out[a] = out[a].astype(f"<U{max(1, max(len(s) for s in out[a]))}")
    out["coords"] = d["coords"][rows].astype(np.float32)
    out["sasa"] = d["sasa"][rows]
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **out)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a shipped data file is world-readable
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    return int(len(keep))
