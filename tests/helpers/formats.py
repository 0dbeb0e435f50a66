"""Tiny datasets in the released formats of every registered benchmark task, from real proteins shipped in
``data/`` (StructureDB sequences, ``data/pdb_dssp`` structures): PEER / TAPE LMDBs, FLIP CSVs, ATOM3D LMDBs.

``write_task_data(task, root)`` writes what ``get_task(task).load(root, split)`` reads, for every split, and
returns ``root``. Labels are simple functions of the proteins (helix fraction, lengths) so they are real numbers of
the right type and range; the point is the format, not the science.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from pa_geo.formats.peer import PEER_LMDB_SOURCES
from pa_geo.formats.peer_flip import FLIP_SOURCES
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.formats.tape_lmdb import write_tape_lmdb
from pa_geo.io import read_structure
from pa_geo.io.protein import Protein
from tests.helpers.atom3d import res_item, write_atom3d_lmdb
from tests.helpers import DATA, STRUCTUREDB

PDB_DIR = DATA / "pdb_dssp"
PDBS = ("3a4rA", "2cviA", "2xcjA", "1lpbA")  # the four smallest shipped chains (79-85 residues)
SMILES = ("CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "NCCc1ccc(O)c(O)c1")
ATOM3D_COLUMNS = ("ensemble", "subunit", "structure", "model", "chain", "hetero", "insertion_code", "residue",
                  "segid", "resname", "altloc", "occupancy", "bfactor", "x", "y", "z", "element", "name", "fullname",
                  "serial_number")
_THREE = {"A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY", "H": "HIS",
          "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER", "T": "THR", "W": "TRP",
          "Y": "TYR", "V": "VAL"}


@functools.lru_cache(maxsize=1)
def chains() -> list:
    """Short StructureDB chains (40-70 residues): ``StructureDBRecord`` with real DSSP labels and coordinates."""
    return [r for r in load_structuredb(STRUCTUREDB, max_chains=120)
            if len(r.protein) <= 70][:8]


@functools.lru_cache(maxsize=None)
def structure(name: str) -> Protein:
    """A shipped PDB chain (``data/pdb_dssp/<name>.pdb.gz``)."""
    return read_structure(PDB_DIR / f"{name}.pdb.gz")


def _helix(r: Any) -> float:
    return float(np.mean(r.ss3 == 0))


# ---- PEER (TAPE LMDB records) ---------------------------------------------------------------------------------
def _peer_record(task: str, i: int) -> dict[str, Any]:
    r, o = chains()[i % len(chains())], chains()[(i + 3) % len(chains())]
    seq, h = r.protein.sequence, _helix(r)
    src = PEER_LMDB_SOURCES[task]
    if task == "secondary_structure":
        return {"primary": seq, "ss3": r.ss3.tolist(), "valid_mask": np.ones(len(seq), np.float32)}
    if task == "contact":
        return {"primary": seq, "tertiary": r.protein.backbone[:, :3].astype(np.float32),
                "valid_mask": np.isfinite(r.protein.ca).all(-1).astype(np.float32)}
    value = {"fluorescence": np.array([3.0 + h], np.float32), "stability": np.array([h - 0.3], np.float32),
             "beta_lactamase": h, "solubility": int(h > 0.3), "subcellular_localization": i % 10,
             "binary_localization": i % 2, "fold": (7 * i) % 1195, "yeast_ppi": i % 2, "human_ppi": (i + 1) % 2,
             "ppi_affinity": 5.0 + h, "pdbbind": 4.0 + 3 * h, "bindingdb": 6.0 - h}[task]
    rec: dict[str, Any] = {src.target_fields[0]: value}
    if len(src.sequence_fields) == 2:
        rec[src.sequence_fields[0]], rec[src.sequence_fields[1]] = seq, o.protein.sequence
    else:
        rec[src.sequence_fields[0]] = seq
    if src.smiles_field:
        rec[src.smiles_field] = SMILES[i % len(SMILES)]
    return rec


def write_peer(task: str, root: Path, splits: list[str], sizes: Callable[[str], int]) -> Path:
    """TAPE-layout LMDBs of ``task`` under ``root`` (TorchDrug's paths)."""
    start = 0
    for split in splits:
        path = root / PEER_LMDB_SOURCES[task].pattern.format(split=split)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tape_lmdb(path, [_peer_record(task, start + i) for i in range(sizes(split))])
        start += sizes(split)
    return root


def write_flip(task: str, root: Path, n: int = 8) -> Path:
    """FLIP's split CSV (``sequence, target, set, validation``) of ``task`` under ``root``."""
    src = FLIP_SOURCES[task]
    pool = chains()
    # a task cropped to a region (AAV: [474:674]) needs sequences that reach past it: real chains joined end to end
    reach = src.region[1] if src.region else 0
    seqs = []
    for i in range(n):
        seq, k = "", i
        while len(seq) < max(1, reach):
            seq, k = seq + pool[k % len(pool)].protein.sequence, k + 1
        seqs.append(seq)
    rows = [{"sequence": seq, "target": round(_helix(pool[i % len(pool)]) * 10, 3),
             "set": "test" if i >= n - 2 else "train", "validation": i in (n - 4, n - 3)}
            for i, seq in enumerate(seqs)]
    path = root / src.folder / "splits" / f"{src.default_split}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return root


# ---- ATOM3D (json-serialised LMDB items, atom frames in split orient) ---------------------------------------------
def atoms_frame(p: Protein, ensemble: str, subunit: Any = 0, chain: str | None = None,
                shift: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> pd.DataFrame:
    """The 20-column ATOM3D atoms frame of a protein (optionally renamed chain / translated)."""
    a, idx = p.atoms, p.atoms.residue_index
    n = len(a)
    coords = a.coords.astype(np.float64) + np.asarray(shift)
    return pd.DataFrame({
        "ensemble": ensemble, "subunit": subunit, "structure": ensemble, "model": 0,
        "chain": chain or a.chain_id, "hetero": np.where(a.hetero, "H_X", " "),
        "insertion_code": " ", "residue": np.asarray(p.residue_numbers)[np.maximum(idx, 0)], "segid": " ",
        "resname": a.resname, "altloc": " ", "occupancy": 1.0, "bfactor": 0.0, "x": coords[:, 0],
        "y": coords[:, 1], "z": coords[:, 2], "element": a.element, "name": a.name,
        "fullname": [f" {x:<3}" for x in a.name], "serial_number": np.arange(1, n + 1)}, columns=list(ATOM3D_COLUMNS))


def _ca(p: Protein) -> np.ndarray:
    return p.backbone[:, 1]


def _atom3d_item(task: str, i: int) -> dict[str, Any]:
    name = PDBS[i % len(PDBS)]
    p = structure(name)
    frame = atoms_frame(p, f"{name}.pdb")
    if task == "lba":
        ligand = atoms_frame(structure(PDBS[(i + 1) % len(PDBS)]), "lig", shift=(2.0, 0.0, 0.0)).iloc[:12].copy()
        ligand["hetero"], ligand["resname"], ligand["chain"] = "H_LIG", "LIG", "L"
        pocket = frame[frame["residue"] <= p.residue_numbers[20]]
        return {"atoms_protein": frame, "atoms_pocket": pocket, "atoms_ligand": ligand, "id": f"{name}_lig",
                "scores": {"neglog_aff": 5.0 + i}, "smiles": SMILES[i % len(SMILES)]}
    if task == "psr":
        return {"atoms": frame, "id": str((f"T{i // 2:04d}", f"{name}_TS{i}")),
                "scores": {"gdt_ts": 0.2 + 0.1 * i, "rmsd": 3.0}}
    if task == "msp":
        k = 10
        wt, chain, num = p.sequence[k], str(p.chain_ids[k]), int(p.residue_numbers[k])
        mut = "A" if wt != "A" else "G"
        mutated = frame.copy()
        mutated.loc[mutated["residue"] == num, "resname"] = _THREE[mut]
        return {"original_atoms": frame, "mutated_atoms": mutated, "label": str(i % 2),
                "id": f"{name[:4].upper()}_{chain}_{chain}_{wt}{chain}{num}{mut}"}
    if task == "res":  # ATOM3D's ResTransform: environments of a few labelled residues
        picks = [(str(p.chain_ids[k]), int(p.residue_numbers[k])) for k in (3, 10, 25)]
        return res_item(frame, name, residues=picks)
    # ppi: subunit 1 is another chain placed so that ~10 residue pairs have CA-CA < 8 A
    q = structure(PDBS[(i + 1) % len(PDBS)])
    shift = _ca(p)[0] - _ca(q)[0] + np.array([6.0, 0.0, 0.0])
    a_df = atoms_frame(p, "complex", subunit=0, chain="A")
    b_df = atoms_frame(q, "complex", subunit=1, chain="B", shift=tuple(shift))
    d = np.linalg.norm(_ca(p)[:, None] - (_ca(q) + shift)[None], axis=-1)
    ii, jj = np.nonzero(d < 8.0)
    nb = pd.DataFrame({"ensemble0": "complex", "subunit0": 0, "structure0": "complex", "model0": 0, "chain0": "A",
                       "residue0": p.residue_numbers[ii], "ensemble1": "complex", "subunit1": 1,
                       "structure1": "complex", "model1": 0, "chain1": "B", "residue1": q.residue_numbers[jj],
                       "label": 1})
    return {"atoms_pairs": pd.concat([a_df, b_df], ignore_index=True), "atoms_neighbors": nb, "id": f"complex{i}"}


def write_atom3d(task: str, split_dir: str, root: Path, splits: list[str], sizes: Callable[[str], int]) -> Path:
    """Released-layout ATOM3D split LMDBs (``<root>/<split dir>/data/<split>``) of ``task``."""
    start = 0
    for split in splits:
        write_atom3d_lmdb(root / split_dir / "data" / split, [_atom3d_item(task, start + i) for i in
                                                              range(sizes(split))])
        start += sizes(split)
    return root


def write_task_data(task: str, root: str | Path, n_train: int = 4, n_eval: int = 2) -> Path:
    """Files of registered task ``task`` under ``root`` in its released format, every split; returns ``root``.
    Demo tasks read the shipped ``data/`` folder itself (returned as is)."""
    from pa_geo.tasks import get_task

    spec, root = get_task(task), Path(root)
    sizes = functools.partial(lambda train, split: n_train if split == train else n_eval, spec.train_split)
    if spec.source == "ATOM3D":
        return write_atom3d(spec.options["atom3d_task"], spec.options["split_dir"], root, spec.splits, sizes)
    if spec.options.get("flip_split"):
        return write_flip(task, root)
    if task in PEER_LMDB_SOURCES:
        return write_peer(task, root, spec.splits, sizes)
    if spec.name.startswith("demo_"):
        return DATA
    raise ValueError(f"no released-format writer for task {task!r}")
