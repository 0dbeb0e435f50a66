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
    from pa_geo.datasets.structuredb import load_structuredb

    (work / "pdb").mkdir(parents=True, exist_ok=True)
    rows, files = ["id,structure,label"], {}
    for rec in load_structuredb(max_chains=chains):
        pid = rec.protein.id
        path = work / "pdb" / f"{pid}.pdb"
        write_backbone_pdb(rec.protein, path)
        rows.append(f"{pid},pdb/{pid}.pdb,{''.join(SS3[k] for k in rec.ss3)}")
        files[pid] = path
    table = work / "labels.csv"
    table.write_text("\n".join(rows) + "\n")
    return table, files
