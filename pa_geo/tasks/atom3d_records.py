"""ATOM3D items -> :class:`TaskRecord` (item keys from atom3d's ``prepare_lmdb.py`` scripts).

* LBA: ``atoms_pocket`` / ``atoms_protein``, ``atoms_ligand``, ``scores['neglog_aff']`` -> protein + ligand
  (a Protein with zero residues and the ligand atoms in its atom table).
* PSR: ``atoms``, ``scores['gdt_ts']``, ``id`` = ``str((target, decoy))`` -> ``extra['target']``, ``['decoy']``.
* MSP: ``original_atoms``, ``mutated_atoms``, ``label`` '0' / '1', ``id`` ``<pdb>_<chains>_<chains>_<mutation>``
  -> proteins [original, mutated], ``extra['mutation_index']`` = residue index of the mutation in each.
* PPI: ``atoms_pairs`` (both subunits, told apart by ``subunit``), ``atoms_neighbors`` (``chain0, residue0,
  subunit0, chain1, residue1, subunit1``: interface residue pairs) -> proteins [subunit 0, subunit 1], label [P]
  float32 (neighbours 1, sampled non-neighbours 0), ``extra['pair_index']`` [2, P] int64.
* RES: ``atoms``, ``labels`` (frame: subunit ``chain_residue_resname``, label = atom3d class), ``subunit_indices``
  -> label [L] int64 (``AMINO_ACIDS`` index), ``label_mask`` [L] on the labelled residues.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pa_geo.datasets.atom3d import Atom3DLMDB
from pa_geo.datasets.atom3d_frames import frame_to_protein
from pa_geo.datasets.atom3d_tasks import LIGAND_CHAIN, RES_CLASSES, item_label, parse_mutation
from pa_geo.errors import DatasetError
from pa_geo.io.protein import AA_TO_INDEX, Protein
from pa_geo.tasks.spec import TaskRecord

ATOM3D_URL = "https://www.atom3d.ai/"


def _find_split(root: Path, split_dir: str, split: str) -> tuple[Path, list[int] | None]:
    """(LMDB dir, item indices or None for all) of ``split``; one-line ``DatasetError`` when nothing is found."""
    for cand in (root / split_dir / "data" / split, root / "splits" / split_dir / "data" / split,
                 root / "data" / split, root / split):
        if (cand / "data.mdb").exists():
            return cand, None
    for idx_dir in (root / split_dir / "indices", root / "splits" / split_dir / "indices", root / "indices", root):
        idx_file = idx_dir / f"{split}_indices.txt"
        if idx_file.is_file():
            for raw in (root / "data", root / "all", root / "raw" / "data", *sorted(root.glob("raw/*/data"))):
                if (raw / "data.mdb").exists():
                    text = idx_file.read_text().split()
                    try:
                        return raw, [int(t) for t in text]
                    except ValueError:
                        raise DatasetError(f"{idx_file}: indices must be integers") from None
    raise DatasetError(f"{root / split_dir / 'data' / split}: ATOM3D split {split!r} not found (expected an LMDB "
                       f"directory with data.mdb; download the {split_dir} archive from {ATOM3D_URL})")


def _frame(item: dict, key: str, where: str) -> pd.DataFrame:
    df = item.get(key)
    if not isinstance(df, pd.DataFrame):
        raise DatasetError(f"{where}: item has no atoms frame {key!r} (keys: {', '.join(sorted(map(str, item)))})")
    return df


def _residue_lookup(protein: Protein) -> dict[tuple[str, int], int]:
    lookup: dict[tuple[str, int], int] = {}
    for i, (c, n) in enumerate(zip(protein.chain_ids.tolist(), protein.residue_numbers.tolist())):
        lookup.setdefault((str(c), int(n)), i)  # atom3d keys residues by (chain, number), no insertion code
    return lookup


def lba_record(item: dict, where: str, pocket: bool = True) -> TaskRecord:
    """LBA item -> protein (pocket or whole) + ligand, label neglog_aff (float)."""
    rid = str(item.get("id"))
    protein = frame_to_protein(_frame(item, "atoms_pocket" if pocket else "atoms_protein", where), rid, where)
    ligand_df = _frame(item, "atoms_ligand", where).copy()
    # Every ligand atom becomes a non-residue HETATM (peptide ligands must not turn into residues).
    ligand_df["hetero"], ligand_df["chain"], ligand_df["resname"] = "H_LIG", LIGAND_CHAIN, "LIG"
    ligand = frame_to_protein(ligand_df, f"{rid}:ligand", where)
    extra = {"smiles": item["smiles"]} if isinstance(item.get("smiles"), str) else {}
    return TaskRecord(rid, [protein], item_label(item, "lba", where), ligand=ligand, extra=extra)


def _psr_ids(raw: Any) -> tuple[str, str]:
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return str(raw[0]), str(raw[1])
    if isinstance(raw, str) and raw.startswith("("):
        try:
            target, decoy = ast.literal_eval(raw)
            return str(target), str(decoy)
        except (ValueError, SyntaxError, TypeError):
            pass
    return str(raw), ""


def psr_record(item: dict, where: str) -> TaskRecord:
    """PSR item -> decoy structure, label GDT_TS, ``extra`` target / decoy."""
    target, decoy = _psr_ids(item.get("id"))
    rid = f"{target}/{decoy}" if decoy else target
    protein = frame_to_protein(_frame(item, "atoms", where), rid, where)
    return TaskRecord(rid, [protein], item_label(item, "psr", where), extra={"target": target, "decoy": decoy})


def msp_record(item: dict, where: str) -> TaskRecord:
    """MSP item -> [original, mutated], label 0/1, ``extra['mutation_index']`` [2] residue indices."""
    rid = str(item.get("id"))
    _, chain, number, icode, _ = parse_mutation(rid)
    proteins, index = [], []
    for key in ("original_atoms", "mutated_atoms"):
        p = frame_to_protein(_frame(item, key, where), f"{rid}:{key.split('_')[0]}", where)
        hit = np.flatnonzero((p.chain_ids == chain) & (p.residue_numbers == number) & (p.insertion_codes == icode))
        if hit.size == 0:
            raise DatasetError(f"{where}: mutated residue {chain}:{number}{icode} not found in {key}")
        proteins.append(p)
        index.append(int(hit[0]))
    return TaskRecord(rid, proteins, item_label(item, "msp", where),
                      extra={"mutation_index": np.asarray(index, np.int64), "mutation": rid.split("_")[-1]})


def ppi_record(item: dict, where: str, rng: np.random.Generator, negatives_per_positive: float = 1.0) -> TaskRecord:
    """PPI item -> two subunits, neighbour pairs (label 1) plus sampled non-neighbour pairs (label 0)."""
    rid = str(item.get("id"))
    atoms, nb = _frame(item, "atoms_pairs", where), _frame(item, "atoms_neighbors", where)
    need = {"chain0", "residue0", "subunit0", "chain1", "residue1", "subunit1"}
    if not need <= set(nb.columns) or len(nb) == 0:
        raise DatasetError(f"{where}: atoms_neighbors needs rows with {', '.join(sorted(need))}")
    proteins, lookups = [], []
    for side in ("0", "1"):
        sub = nb[f"subunit{side}"].iloc[0]
        p = frame_to_protein(atoms[atoms["subunit"] == sub], f"{rid}:{sub}", where)
        if len(p) == 0:
            raise DatasetError(f"{where}: subunit {sub!r} of atoms_neighbors has no residues in atoms_pairs")
        proteins.append(p)
        lookups.append(_residue_lookup(p))
    pos = set()
    for c0, r0, c1, r1 in zip(nb["chain0"], nb["residue0"], nb["chain1"], nb["residue1"]):
        i, j = lookups[0].get((str(c0), int(r0))), lookups[1].get((str(c1), int(r1)))
        if i is None or j is None:
            raise DatasetError(f"{where}: neighbour pair {c0}:{r0} - {c1}:{r1} names a residue not in the subunits")
        pos.add((i, j))
    n0, n1 = len(proteins[0]), len(proteins[1])
    want = min(int(round(negatives_per_positive * len(pos))), n0 * n1 - len(pos))
    neg: set[tuple[int, int]] = set()
    while len(neg) < want:
        for i, j in zip(rng.integers(0, n0, 2 * want).tolist(), rng.integers(0, n1, 2 * want).tolist()):
            if (i, j) not in pos and len(neg) < want:
                neg.add((i, j))
    pairs = sorted(pos) + sorted(neg)
    label = np.concatenate([np.ones(len(pos), np.float32), np.zeros(len(neg), np.float32)])
    return TaskRecord(rid, proteins, label, extra={"pair_index": np.asarray(pairs, np.int64).reshape(-1, 2).T})


def res_record(item: dict, where: str) -> TaskRecord:
    """RES item -> whole structure, label [L] int64 AMINO_ACIDS index, label_mask [L] on labelled residues."""
    rid = str(item.get("id"))
    protein = frame_to_protein(_frame(item, "atoms", where), rid, where)
    labels = item.get("labels")
    if not isinstance(labels, pd.DataFrame) or not {"subunit", "label"} <= set(labels.columns):
        raise DatasetError(f"{where}: RES labels must be a frame with subunit and label columns")
    lookup = _residue_lookup(protein)
    label = np.zeros(len(protein), np.int64)
    mask = np.zeros(len(protein), bool)
    for sub, lab in zip(labels["subunit"].astype(str), labels["label"]):
        parts = sub.rsplit("_", 2)
        node = lookup.get((parts[0], int(parts[1]))) if len(parts) == 3 and parts[1].lstrip("-").isdigit() else None
        if node is None or not 0 <= int(lab) < len(RES_CLASSES):
            raise DatasetError(f"{where}: RES label {sub!r}={lab!r} names no residue of the structure")
        label[node], mask[node] = AA_TO_INDEX[RES_CLASSES[int(lab)]], True
    return TaskRecord(rid, [protein], label, label_mask=mask)


def load_atom3d_task(task: str, split_dir: str, root: str | Path, split: str, pocket: bool = True,
                     negatives_per_positive: float = 1.0, seed: int = 0) -> list[TaskRecord]:
    """Read ``split`` of ATOM3D ``task`` (lba, psr, msp, ppi, res) under ``root`` into records."""
    path, indices = _find_split(Path(root), split_dir, split)
    ds = Atom3DLMDB(path)
    records = []
    try:
        for i in (range(len(ds)) if indices is None else indices):
            item = ds[i]
            where = f"{path}[{i}]"
            if task == "lba":
                records.append(lba_record(item, where, pocket=pocket))
            elif task == "psr":
                records.append(psr_record(item, where))
            elif task == "msp":
                records.append(msp_record(item, where))
            elif task == "ppi":
                records.append(ppi_record(item, where, np.random.default_rng([seed, i]), negatives_per_positive))
            elif task == "res":
                records.append(res_record(item, where))
            else:
                raise DatasetError(f"{path}: unknown ATOM3D task {task!r} (lba, psr, msp, ppi, res)")
    finally:
        ds.close()
    return records
