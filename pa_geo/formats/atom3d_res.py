"""ATOM3D RES: one record per labelled residue environment, as ATOM3D defines it.

Upstream (read with the search tool):

* ``drorlab/atom3d`` ``examples/res/dataset/prepare_lmdb.py`` (``ResTransform``) writes each item as ``atoms`` (the
  structure without hetero atoms, NaN coordinates or elements outside C, O, N, S, P, SE; index reset to 0..n-1),
  ``labels`` (one row per canonical residue having N, CA, C and O: ``subunit`` = ``chain_residue_resname``,
  ``label`` = class in ``label_res_dict`` order (:data:`RES_CLASSES`), ``x, y, z`` = a pseudo-CB at CA +
  ``gly_CB_mu``) and ``subunit_indices`` (per label, the row indices of the environment: every atom of the
  structure *with that residue's side chain removed* - all its atoms but N, CA, C, O - lying within
  10 * sqrt(3) A of the pseudo-CB).
* ``drorlab/gvp-pytorch`` ``gvp/atom3d.py`` (``RESDataset``; atom3d's own ``examples/res`` models are empty files
  in the stored snapshot): one graph per label row from ``atoms.iloc[subunit_indices[k]]``; the label is the
  residue class; the central residue is marked by ``ca_idx``, the node index of its CA (the only CA with that
  residue number in the environment, else the environment is skipped; pa_geo matches chain and number);
  ``RESModel`` classifies from that CA's embedding. Rows of a non-canonical residue are skipped.

Here each environment becomes a :class:`TaskRecord` with one protein (the environment's atoms; its residues are the
fragments inside the sphere), ``label`` = the ATOM3D class (0..19, :data:`RES_CLASSES` order) and
``extra['center_index']`` (residue index of the central residue), ``extra['center_atom_index']`` (its CA's row in
``proteins[0].atoms``: atom3d's ``ca_idx``). The side chain is removed again (a no-op on released data) and the
central residue is renamed ``UNK`` (sequence letter ``X``): ATOM3D's models read only elements, pa_geo's inputs
read residue types and sequence embeddings, which would otherwise give the answer away.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.formats.atom3d_tasks import RES_CLASSES, item_frame
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError

BACKBONE_NAMES = ("N", "CA", "C", "O")  # atom3d's bb_atoms: what stays of the central residue
_THREE = {"HIS": "H", "LYS": "K", "ARG": "R", "ASP": "D", "GLU": "E", "SER": "S", "THR": "T", "ASN": "N",
          "GLN": "Q", "ALA": "A", "VAL": "V", "LEU": "L", "ILE": "I", "MET": "M", "PHE": "F", "TYR": "Y",
          "TRP": "W", "PRO": "P", "GLY": "G", "CYS": "C"}


def _parse_subunit(subunit: str, where: str) -> tuple[str, int, str]:
    parts = str(subunit).rsplit("_", 2)
    if len(parts) != 3 or not parts[1].lstrip("-").isdigit():
        raise DatasetError(f"{where}: RES subunit {subunit!r} is not chain_residue_resname")
    return parts[0], int(parts[1]), parts[2].strip().upper()


def res_environment(atoms: pd.DataFrame, indices: list[int], subunit: str, label: int, item_id: str,
                    where: str) -> TaskRecord:
    """One labelled environment -> record (see the module docstring for the fields).

    ``atoms`` [A rows] the item's atoms frame; ``indices`` the environment's row positions (``subunit_indices[k]``);
    ``subunit`` ``chain_residue_resname``; ``label`` the ATOM3D class. Raises :class:`DatasetError` naming ``where``
    and the subunit for a label outside 0..19 or disagreeing with the residue name, indices outside the frame, or an
    environment without exactly one CA of the central residue (gvp-pytorch skips those).
    """
    chain, number, resname = _parse_subunit(subunit, where)
    here = f"{where} {chain}_{number}"
    if not (isinstance(label, (int, np.integer)) or float(label).is_integer()) or not 0 <= int(label) < 20:
        raise DatasetError(f"{here}: RES label {label!r} is not a class 0..19")
    label = int(label)
    if resname in _THREE and _THREE[resname] != RES_CLASSES[label]:
        raise DatasetError(f"{here}: label {label} ({RES_CLASSES[label]}) contradicts the residue name {resname}")
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= len(atoms):
        raise DatasetError(f"{here}: subunit_indices outside the {len(atoms)} atoms of the item")
    env = atoms.iloc[idx]
    same_chain = env["chain"].astype(str).str.strip() == chain
    central = (same_chain & (pd.to_numeric(env["residue"], errors="coerce") == number)).to_numpy()
    keep = ~central | env["name"].astype(str).str.strip().isin(BACKBONE_NAMES).to_numpy()
    env = env[keep].reset_index(drop=True)  # the side chain removed, as ATOM3D defines it
    env["resname"] = np.where(central[keep], "UNK", env["resname"].to_numpy(dtype=object))  # hide the answer
    rid = f"{item_id}/{chain}_{number}"
    protein = frame_to_protein(env, rid, where)
    a = protein.atoms
    residues = np.flatnonzero((protein.chain_ids == chain) & (protein.residue_numbers == number))
    ca = np.flatnonzero(np.isin(a.residue_index, residues) & (a.name == "CA"))
    if ca.size != 1:
        raise DatasetError(f"{here}: the environment holds {ca.size} CA atoms of the central residue, expected 1")
    center = int(a.residue_index[ca[0]])
    return TaskRecord(rid, [protein], label, extra={"center_index": center, "center_atom_index": int(ca[0]),
                                                    "structure": str(item_id), "subunit": f"{chain}_{number}"})


def res_record_builders(item: dict, where: str) -> list[Callable[[], TaskRecord]]:
    """One zero-argument builder per labelled environment of a RES item, in label order.

    Item-level problems (no atoms / labels frame, ``subunit_indices`` not matching the labels) raise here; an
    environment's own problems raise when its builder is called, so one bad environment costs one record.
    """
    atoms = item_frame(item, "atoms", where)
    labels = item.get("labels")
    if not isinstance(labels, pd.DataFrame) or not {"subunit", "label"} <= set(labels.columns):
        raise DatasetError(f"{where}: RES labels must be a frame with subunit and label columns")
    subunits = item.get("subunit_indices")
    if subunits is None or len(subunits) != len(labels):
        raise DatasetError(f"{where}: subunit_indices has {None if subunits is None else len(subunits)} entries "
                           f"for {len(labels)} labels")
    item_id = str(item.get("id"))
    rows = zip(labels["subunit"].tolist(), labels["label"].tolist(), subunits)
    return [lambda s=s, lab=lab, idx=idx: res_environment(atoms, idx, s, lab, item_id, where)
            for s, lab, idx in rows]
