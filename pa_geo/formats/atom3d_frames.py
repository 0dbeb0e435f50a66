"""ATOM3D atom frames (the 20-column pandas DataFrame) -> :class:`~pa_geo.io.Protein`.

Rules (tested in ``tests/formats/test_atom3d_frames.py``):

* Only the first model (the ``model`` value of the first row) is kept.
* Alternate locations: per atom (chain, hetero, residue, insertion code, atom name) the first row whose altloc is
  blank or equals the first altloc letter seen for that residue is kept; later duplicates are dropped.
* A residue is a (chain, hetero, residue number, insertion code) group, in order of first appearance. It is an
  amino-acid residue when its name is an amino acid of the Chemical Component Dictionary (peptide link type; the rule
  :func:`pa_geo.io.structure.residue_kind` applies to PDB / mmCIF files) or ``UNK``, and, for HETATM groups (e.g.
  ``H_MSE``), when it has a CA atom. Modified residues map to their parent letter (X outside the 20 standard ones,
  :func:`pa_geo.io.structure.one_letter`) and stay ``hetero`` in the atom table; ``UNK`` maps to ``X``.
* Everything else (water, ligands, ions, nucleotides) stays in the atom table with ``residue_index`` -1 and
  ``hetero`` True.
* ``chain_breaks[i]`` is True at a chain's first residue and where C(i-1)-N(i) > 2 A or cannot be measured.
* Atoms with NaN / inf coordinates are dropped with a warning (a frame where none is finite is refused);
  coordinates beyond ``MAX_ABS_COORD`` are refused.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pa_geo.formats.record_checks import DatasetWarning
from pa_geo.errors import DatasetError
from pa_geo.io.protein import BACKBONE_ATOMS, AtomTable, Protein
from pa_geo.io.structure import MAX_ABS_COORD, one_letter, residue_kind

REQUIRED_COLUMNS: tuple[str, ...] = ("chain", "hetero", "residue", "resname", "x", "y", "z", "name")
_PEPTIDE_BOND_MAX = 2.0


def _text(col: pd.Series, upper: bool = False) -> np.ndarray:
    """Stripped strings (NaN -> ""), as an object array; strips each distinct value once (columns repeat a lot)."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    table = np.array([str(u).strip().upper() if upper else str(u).strip() for u in uniques] + [""], dtype=object)
    return table[codes]  # code -1 (NaN) picks the trailing ""


def _select_model_and_altloc(df: pd.DataFrame) -> pd.DataFrame:
    if "model" in df.columns and len(df):
        df = df[df["model"].to_numpy() == df["model"].iloc[0]]
    if "altloc" in df.columns and len(df):
        alt = _text(df["altloc"])
        if (alt != "").any():
            res_key = ["chain", "hetero", "residue"] + (["insertion_code"] if "insertion_code" in df else [])
            first_alt = (pd.Series(np.where(alt == "", None, alt), index=df.index)
                         .groupby([df[c] for c in res_key], sort=False).transform("first"))
            keep = (alt == "") | (alt == first_alt.to_numpy(dtype=object))
            df = df[keep]
    atom_key = ["chain", "hetero", "residue"] + (["insertion_code"] if "insertion_code" in df else []) + ["name"]
    return df[~df.duplicated(subset=atom_key, keep="first")]


def frame_to_protein(df: pd.DataFrame, id: str, source: str = "") -> Protein:
    """Turn one ATOM3D atoms frame into a :class:`Protein` with residues, backbone and the full atom table.

    ``df``: DataFrame with at least the columns of :data:`REQUIRED_COLUMNS` (ATOM3D writes 20 columns; ``model``,
    ``altloc``, ``insertion_code`` and ``element`` are used when present). Raises :class:`DatasetError` naming
    ``source`` / ``id`` when the frame is not an atoms frame or its coordinates are not numeric.
    """
    where = f"{source or 'atom3d'}[{id}]"
    if not isinstance(df, pd.DataFrame):
        raise DatasetError(f"{where}: expected an atoms DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{where}: atoms frame lacks column(s) {', '.join(missing)}")
    df = _select_model_and_altloc(df.reset_index(drop=True))
    try:
        coords = df[["x", "y", "z"]].to_numpy(dtype=np.float32)
        resnum = pd.to_numeric(df["residue"], errors="raise").to_numpy(dtype=np.int64)
    except (ValueError, TypeError) as err:
        raise DatasetError(f"{where}: non-numeric coordinates or residue numbers ({err})") from None
    finite = np.isfinite(coords).all(-1)
    if not finite.all():  # same policy as read_structure: such atoms are dropped, never silently
        if not finite.any():
            raise DatasetError(f"{where}: no atom has finite coordinates (all {len(df)} are NaN/inf)")
        first = int(np.flatnonzero(~finite)[0])
        warnings.warn(f"{where}: dropped {int((~finite).sum())} of {len(df)} atoms with non-finite coordinates "
                      f"(first: atom {df['name'].iat[first]!r} of residue {resnum[first]})", DatasetWarning,
                      stacklevel=2)
        df, coords, resnum = df[finite], coords[finite], resnum[finite]
    if np.abs(coords).max(initial=0.0) > MAX_ABS_COORD:
        row = int(np.flatnonzero(np.abs(coords).max(-1) > MAX_ABS_COORD)[0])
        xyz = ", ".join(f"{v:g}" for v in coords[row])
        raise DatasetError(f"{where}: atom {df['name'].iat[row]!r} of residue {resnum[row]} has coordinates ({xyz}) "
                           f"beyond +-{MAX_ABS_COORD:g} A (not a molecule)")

    chain = _text(df["chain"])
    het = _text(df["hetero"])
    icode = _text(df["insertion_code"]) if "insertion_code" in df else np.full(len(df), "", dtype=object)
    resname = _text(df["resname"], upper=True)
    name = _text(df["name"])
    if "element" in df:
        element = _text(df["element"], upper=True)
    else:
        element = np.array([n[:1].upper() for n in name], dtype=object)

    keys = pd.DataFrame({"c": chain, "h": het, "r": resnum, "i": icode})
    group = keys.groupby(["c", "h", "r", "i"], sort=False, dropna=False).ngroup().to_numpy()
    G = int(group.max()) + 1 if len(group) else 0
    first = np.full(G, len(df), np.int64)
    np.minimum.at(first, group, np.arange(len(df)))
    g_resname, g_het = resname[first], het[first]
    has_ca = np.zeros(G, bool)
    has_ca[group[name == "CA"]] = True
    is_aa = np.fromiter((r == "UNK" or residue_kind(r) == "amino" for r in g_resname), bool, count=G)
    is_res = is_aa & ((g_het == "") | has_ca) & ~np.isin(g_het, ["W"])
    res_of_group = np.full(G, -1, np.int64)
    res_of_group[is_res] = np.arange(int(is_res.sum()))
    residue_index = res_of_group[group] if len(group) else np.zeros(0, np.int64)

    rg = first[is_res]
    L = len(rg)
    sequence = "".join(one_letter(r) for r in g_resname[is_res])
    backbone = np.full((L, 4, 3), np.nan, np.float32)
    for slot, atom in enumerate(BACKBONE_ATOMS):
        sel = (name == atom) & (residue_index >= 0)
        backbone[residue_index[sel], slot] = coords[sel]
    chain_ids = chain[rg]
    breaks = np.ones(L, bool)
    if L > 1:
        gap = np.linalg.norm(backbone[1:, 0] - backbone[:-1, 2], axis=-1)
        breaks[1:] = (chain_ids[1:] != chain_ids[:-1]) | ~(gap <= _PEPTIDE_BOND_MAX)
    atoms = AtomTable(element=element, name=name, resname=resname,
                      residue_index=residue_index, coords=coords, hetero=(het != "") | (residue_index < 0),
                      chain_id=chain)
    return Protein(id=str(id), sequence=sequence, chain_ids=chain_ids, residue_numbers=resnum[rg],
                   insertion_codes=icode[rg], backbone=backbone, chain_breaks=breaks, atoms=atoms,
                   source=source, has_structure=True)
