"""ATOM3D task items -> :class:`TaskRecord` (LBA, PSR, MSP here; RES in :mod:`.atom3d_res`, PPI in :mod:`.atom3d_ppi`).

Item keys are those written by atom3d's ``examples/<task>/dataset/prepare_lmdb.py`` scripts:

* LBA: ``atoms_pocket`` / ``atoms_protein``, ``atoms_ligand``, ``scores['neglog_aff']`` -> one protein + a ligand
  (a Protein with zero residues holding the ligand atoms in its atom table), label neglog_aff (float).
* PSR: ``atoms``, ``scores['gdt_ts']``, ``id`` = ``str((target, decoy))`` -> label GDT_TS, ``extra['target']``,
  ``extra['decoy']`` (PSR is scored per target).
* MSP: ``original_atoms``, ``mutated_atoms``, ``label`` '0' / '1', ``id`` ``<pdb>_<chains>_<chains>_<mutation>``
  -> proteins [original, mutated], ``extra['mutation_index']`` [2] residue index of the mutation in each.

This module is the one place ATOM3D task items are read; :mod:`pa_geo.formats.atom3d_loader` streams a split's
records from its LMDB.
"""
from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np
import pandas as pd

from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein

# atom3d's RES class order (examples/res/dataset/util.py: label_res_dict) as one-letter codes
RES_CLASSES: tuple[str, ...] = ("H", "K", "R", "D", "E", "S", "T", "N", "Q", "A", "V", "L", "I", "M", "F", "Y",
                                "W", "P", "G", "C")
_MUTATION = re.compile(r"^([A-Z])([A-Za-z0-9]{1,4}?)(-?\d+)([A-Z]?)([A-Z])$")
TASKS = ("lba", "psr", "msp", "ppi", "res")
LIGAND_CHAIN = "__ligand__"  # chain id given to LBA ligand atoms (no PDB chain id is this long)


def detect_task(item: dict) -> str | None:
    """The ATOM3D task an item belongs to from its keys (``lba``, ``psr``, ``msp``, ``ppi``, ``res``), None if
    generic."""
    if "atoms_ligand" in item:
        return "lba"
    if "original_atoms" in item and "mutated_atoms" in item:
        return "msp"
    if "atoms_pairs" in item and "atoms_neighbors" in item:
        return "ppi"
    if "labels" in item and "subunit_indices" in item:
        return "res"
    if "atoms" in item and item.get("scores") is not None:
        return "psr"
    return None


def _score(scores: Any, key: str, where: str) -> float:
    if isinstance(scores, dict) and "index" in scores and "data" in scores and key not in scores:
        scores = dict(zip(scores["index"], scores["data"]))  # a split Series stored without its type string
    try:
        return float(scores[key])
    except (KeyError, TypeError, ValueError, IndexError):
        raise DatasetError(f"{where}: scores has no numeric {key!r}") from None


def item_label(item: dict, task: str | None, where: str = "atom3d") -> Any:
    """The task's label of an item: LBA neglog_aff, PSR gdt_ts, MSP 0/1; None for PPI / RES / generic items."""
    where = f"{where}[{item.get('id')}]"
    if task == "lba":
        return _score(item.get("scores"), "neglog_aff", where)
    if task == "psr":
        return _score(item.get("scores"), "gdt_ts", where)
    if task == "msp":
        label = str(item.get("label")).strip()
        if label not in ("0", "1"):
            raise DatasetError(f"{where}: MSP label must be '0' or '1', got {item.get('label')!r}")
        return int(label)
    return None


def item_frame(item: dict, key: str, where: str) -> pd.DataFrame:
    """``item[key]`` as an atoms DataFrame; one-line :class:`DatasetError` naming ``where`` when absent."""
    df = item.get(key)
    if not isinstance(df, pd.DataFrame):
        raise DatasetError(f"{where}: item has no atoms frame {key!r} (keys: {', '.join(sorted(map(str, item)))})")
    return df


def residue_lookup(protein: Protein) -> dict[tuple[str, int], int]:
    """``(chain, residue number) -> residue index`` (atom3d keys residues by these two, without insertion code;
    the first residue wins when an insertion code repeats a number)."""
    lookup: dict[tuple[str, int], int] = {}
    for i, (c, n) in enumerate(zip(protein.chain_ids.tolist(), protein.residue_numbers.tolist())):
        lookup.setdefault((str(c), int(n)), i)
    return lookup


def parse_mutation(item_id: str) -> tuple[str, str, int, str, str]:
    """``'1A22_A_B_RA48A'`` -> (wild type 'R', chain 'A', residue number 48, insertion code '', mutant 'A')."""
    code = str(item_id).split("_")[-1]
    m = _MUTATION.match(code)
    if not m:
        raise DatasetError(f"MSP id {item_id!r}: last field {code!r} is not a mutation like RA48A")
    return m.group(1), m.group(2), int(m.group(3)), m.group(4), m.group(5)


def lba_record(item: dict, where: str, pocket: bool = True) -> TaskRecord:
    """LBA item -> protein (pocket, or whole protein with ``pocket=False``) + ligand, label neglog_aff."""
    rid = str(item.get("id"))
    protein = frame_to_protein(item_frame(item, "atoms_pocket" if pocket else "atoms_protein", where), rid, where)
    ligand_df = item_frame(item, "atoms_ligand", where).copy()
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
    protein = frame_to_protein(item_frame(item, "atoms", where), rid, where)
    return TaskRecord(rid, [protein], item_label(item, "psr", where), extra={"target": target, "decoy": decoy})


def msp_record(item: dict, where: str) -> TaskRecord:
    """MSP item -> [original, mutated], label 0/1, ``extra['mutation_index']`` [2] residue indices."""
    rid = str(item.get("id"))
    _, chain, number, icode, _ = parse_mutation(rid)
    proteins, index = [], []
    for key in ("original_atoms", "mutated_atoms"):
        p = frame_to_protein(item_frame(item, key, where), f"{rid}:{key.split('_')[0]}", where)
        hit = np.flatnonzero((p.chain_ids == chain) & (p.residue_numbers == number) & (p.insertion_codes == icode))
        if hit.size == 0:
            raise DatasetError(f"{where}: mutated residue {chain}:{number}{icode} not found in {key}")
        proteins.append(p)
        index.append(int(hit[0]))
    return TaskRecord(rid, proteins, item_label(item, "msp", where),
                      extra={"mutation_index": np.asarray(index, np.int64), "mutation": rid.split("_")[-1]})
