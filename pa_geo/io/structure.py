"""PDB / mmCIF (plain or gzipped) -> :class:`Protein`, through biotite 1.x, with every policy written down.

Policies of :func:`read_structure`:
    models          one model is read: ``model`` is 0-based (NMR ensembles: the first model by default).
    altlocs         per residue, the altloc id with the highest summed occupancy; ties go to the first id
                    (``A`` before ``B``). Atoms without an altloc id are always kept. When altlocs carry different
                    residue names at one position (microheterogeneity) the first residue is kept.
    residues        a residue is an amino acid when the Chemical Component Dictionary (CCD, shipped with biotite)
                    gives it a peptide link type, or, for names unknown to the CCD, when it is an ATOM record
                    with a CA. It counts only with a CA atom at finite coordinates; amino acids without one are
                    dropped from the sequence (their atoms stay in the atom table, residue_index -1).
    letters         the CCD one-letter code, so modified residues map to their parent (MSE -> M, SEP -> S,
                    HYP -> P); anything outside the 20 standard letters (UNK, SEC, PYL, no parent) -> ``X``.
    insertion codes 82, 82A, 82B are distinct residues (numbering keeps the author number and code).
    non-residues    water, ligands, ions, nucleotides: kept in the atom table (hetero, residue_index -1).
    coordinates     atoms with non-finite coordinates are dropped; a file where none is finite is refused.
    chain breaks    True at the first residue of each chain and where C(i-1)-N(i) > 2.0 A; when either atom is
                    missing the CA(i-1)-CA(i) distance decides (> 4.2 A).
    chain ids       author chain ids; a blank chain id takes the PDB segment id (columns 73-76), else ``A``
                    (``_`` if ``A`` is taken).
    atom serials    never needed (hybrid-36 serials, as written for > 99,999 atoms, read fine); hybrid-36
                    residue numbers are decoded.
Anything else that prevents a Protein raises :class:`~pa_geo.errors.StructureError` (``"<file>: <reason>"``).
"""
from __future__ import annotations

import io
import os
import warnings
from functools import lru_cache

import numpy as np

from pa_geo.errors import StructureError
from pa_geo.io.protein import AMINO_ACIDS, BACKBONE_ATOMS, AtomTable, Protein
from pa_geo.io.sniff import bytes_to_text, protein_id_from_path, read_bytes, structure_format

PEPTIDE_BOND_MAX = 2.0  # Angstrom, C(i-1)-N(i)
CA_CA_MAX = 4.2  # Angstrom, fallback when C or N is missing (trans 3.8 A)
WATER_NAMES = frozenset({"HOH", "WAT", "H2O", "DOD", "D2O", "TIP", "TIP3", "SOL"})


@lru_cache(maxsize=None)
def residue_kind(res_name: str) -> str:
    """``"amino"`` (peptide link type in the CCD), ``"other"`` (known, not an amino acid) or ``"unknown"``."""
    if res_name in WATER_NAMES:
        return "other"
    from biotite.structure.info import link_type

    kind = link_type(res_name)
    if kind is None:
        return "unknown"
    return "amino" if "PEPTIDE" in kind.upper() else "other"


@lru_cache(maxsize=None)
def one_letter(res_name: str) -> str:
    """One-letter code of a residue name via the CCD parent mapping; ``X`` outside the 20 standard letters."""
    from biotite.structure.info import one_letter_code

    code = one_letter_code(res_name)
    return code if code is not None and code in AMINO_ACIDS else "X"


def chain_breaks_from_backbone(backbone: np.ndarray, chain_ids: np.ndarray) -> np.ndarray:
    """``[L]`` bool: True where residue i does not bond to residue i-1 (new chain, or a geometric gap).

    ``backbone`` is ``[L, 4, 3]`` (N, CA, C, O, NaN where missing), ``chain_ids`` ``[L]``. Residue i is bonded to
    i-1 when C(i-1)-N(i) <= 2.0 A; when either atom is missing, when CA(i-1)-CA(i) <= 4.2 A.
    """
    L = len(chain_ids)
    breaks = np.ones(L, bool)
    if L < 2:
        return breaks
    bb = np.asarray(backbone, dtype=np.float64)
    cn = np.linalg.norm(bb[1:, 0] - bb[:-1, 2], axis=-1)
    caca = np.linalg.norm(bb[1:, 1] - bb[:-1, 1], axis=-1)
    with np.errstate(invalid="ignore"):
        bonded = np.where(np.isfinite(cn), cn <= PEPTIDE_BOND_MAX, caca <= CA_CA_MAX)
    same_chain = np.asarray(chain_ids[1:]) == np.asarray(chain_ids[:-1])
    breaks[1:] = ~(bonded & same_chain)
    return breaks


def _model_index(path: str, model: int, n_models: int) -> int:
    if n_models == 0:
        raise StructureError(path, "no ATOM/HETATM records")
    if not isinstance(model, (int, np.integer)) or not 0 <= model < n_models:
        raise StructureError(path, f"model {model} requested but the file has {n_models} model(s) (0-based)")
    return int(model) + 1  # biotite counts models from 1


def _pdb_segids(lines: list[str], model: int) -> np.ndarray:
    """Segment ids (columns 73-76) of the ATOM/HETATM records of 0-based ``model``, in record order."""
    starts = [i for i, line in enumerate(lines) if line.startswith("MODEL")] or [0]
    stop = starts[model + 1] if model + 1 < len(starts) else len(lines)
    return np.array([lines[i][72:76].strip() for i in range(starts[model], stop)
                     if lines[i].startswith(("ATOM", "HETATM"))], dtype=object)


def _load_atoms(path: str, text: str, fmt: str, model: int):
    """biotite AtomArray of one model with all altlocs (``altloc_id``, ``occupancy``) and PDB segids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # element guessing, missing CRYST1 etc. are not errors here
        if fmt == "pdb":
            from biotite.structure.io.pdb import PDBFile

            f = PDBFile.read(io.StringIO(text))
            m = _model_index(path, model, f.get_model_count())
            atoms = f.get_structure(model=m, altloc="all", extra_fields=["occupancy"])
            segids = _pdb_segids(f.lines, m - 1)
            if len(segids) != atoms.array_length():
                segids = np.full(atoms.array_length(), "", dtype=object)
        else:
            from biotite.structure.io import pdbx

            f = pdbx.CIFFile.read(io.StringIO(text))
            if "atom_site" not in f.block:
                raise StructureError(path, "mmCIF without an _atom_site loop (no coordinates)")
            m = _model_index(path, model, pdbx.get_model_count(f))
            atoms = pdbx.get_structure(f, model=m, altloc="all", extra_fields=["occupancy"],
                                       use_author_fields=True)
            segids = np.full(atoms.array_length(), "", dtype=object)
    return atoms, segids


def _select_altlocs(atoms):
    import biotite.structure as struc

    altloc = np.asarray(atoms.altloc_id).astype(str)
    keep = struc.filter_highest_occupancy_altloc(atoms, altloc, np.asarray(atoms.occupancy, float))
    return keep


def _fix_chain_ids(chain: np.ndarray, segids: np.ndarray) -> np.ndarray:
    chain = chain.astype(object)
    blank = chain == ""
    if blank.any():
        fallback = "_" if "A" in set(chain[~blank]) else "A"
        chain[blank] = np.where(segids[blank] != "", segids[blank], fallback)
    return chain


def atoms_to_protein(atoms, segids: np.ndarray, source: str, protein_id: str,
                     chains: list[str] | str | None = None) -> Protein:
    """Build a :class:`Protein` from one biotite model (all altlocs); see the module docstring for the rules."""
    import biotite.structure as struc

    if atoms.array_length() == 0:
        raise StructureError(source, "no atoms in the selected model")
    finite = np.isfinite(atoms.coord).all(-1)
    if not finite.any():
        raise StructureError(source, "no atom has finite coordinates (all NaN/inf)")
    keep = _select_altlocs(atoms) & finite
    atoms, segids = atoms[keep], np.asarray(segids, dtype=object)[keep]
    chain = _fix_chain_ids(np.asarray(atoms.chain_id), segids)
    atoms.chain_id = chain.astype(str)
    names = np.asarray(atoms.atom_name).astype(str)
    res_names = np.asarray(atoms.res_name).astype(str)
    hetero = np.asarray(atoms.hetero, bool)

    starts = struc.get_residue_starts(atoms, add_exclusive_stop=True)
    residue_index = np.full(len(names), -1, np.int64)
    seq, chain_ids, numbers, icodes, bb_rows = [], [], [], [], []
    seen: set[tuple[str, int, str]] = set()
    n_amino = 0
    for start, stop in zip(starts[:-1], starts[1:]):
        rn = res_names[start]
        res_atoms = names[start:stop]
        kind = residue_kind(rn)
        has_ca = "CA" in res_atoms
        if not (kind == "amino" or (kind == "unknown" and not hetero[start] and has_ca)):
            continue
        n_amino += 1
        key = (chain[start], int(atoms.res_id[start]), str(atoms.ins_code[start]))
        if not has_ca or key in seen:
            continue
        seen.add(key)
        residue_index[start:stop] = len(seq)
        seq.append(one_letter(rn))
        chain_ids.append(key[0]), numbers.append(key[1]), icodes.append(key[2])
        rows = [start + int(np.flatnonzero(res_atoms == a)[0]) if a in res_atoms else -1 for a in BACKBONE_ATOMS]
        bb_rows.append(rows)
    if n_amino == 0:
        raise StructureError(source, "no protein chain (no amino-acid residues)")
    if not seq:
        raise StructureError(source, "no amino-acid residue has a CA atom")

    rows = np.asarray(bb_rows, np.int64)
    backbone = np.where((rows >= 0)[..., None], atoms.coord[np.clip(rows, 0, None)], np.nan).astype(np.float32)
    chain_arr = np.asarray(chain_ids, dtype=object)
    elements = np.array([e.upper() for e in np.asarray(atoms.element).astype(str)], dtype=object)
    table = AtomTable(elements, names.astype(object), res_names.astype(object), residue_index,
                      atoms.coord.astype(np.float32), hetero | (residue_index < 0), chain.astype(object))
    protein = Protein(protein_id, "".join(seq), chain_arr, np.asarray(numbers, np.int64),
                      np.asarray(icodes, dtype=object), backbone,
                      chain_breaks_from_backbone(backbone, chain_arr), table, source, True)
    if chains is None:
        return protein
    wanted = [chains] if isinstance(chains, str) else list(chains)
    if not wanted:
        raise StructureError(source, "empty chain selection (pass None for all protein chains)")
    missing = [c for c in wanted if c not in protein.chains]
    if missing:
        raise StructureError(source, f"chain(s) {', '.join(map(repr, missing))} not found; protein chains in "
                                     f"the file: {', '.join(protein.chains)}")
    return protein.select_chains(wanted)


def read_structure(path: str | os.PathLike, chains: list[str] | str | None = None, model: int = 0) -> Protein:
    """Read a PDB or mmCIF file (``.gz`` or plain) into a :class:`Protein` of the selected chains.

    Args:
        path: ``.pdb``/``.ent``/``.cif``/``.mmcif``, optionally ``.gz``; other names are sniffed by content.
        chains: chain ids to keep (all protein chains when None), in file order.
        model: 0-based model index (NMR ensembles; default the first model).
    Returns:
        Protein with ``backbone [L, 4, 3]`` float32 (NaN where missing), ``chain_breaks [L]`` and the full
        atom table of the kept chains. Policies (altlocs, modified residues, insertion codes, waters/ligands,
        chain breaks, blank chain ids) are listed in this module's docstring.
    Raises:
        StructureError: one line ``"<file>: <reason>"`` (missing/empty/binary/HTML/truncated gzip/FASTA input,
        malformed records, no protein chain, no CA, no finite coordinates, unknown chain or model).
    """
    source = str(path)
    text = bytes_to_text(source, read_bytes(source))
    fmt = structure_format(source, text)
    try:
        atoms, segids = _load_atoms(source, text, fmt, model)
        return atoms_to_protein(atoms, segids, source, protein_id_from_path(source), chains)
    except StructureError:
        raise
    except Exception as err:  # biotite raises ValueError/IndexError/InvalidFileError/... on malformed records
        kind = "PDB" if fmt == "pdb" else "mmCIF"
        raise StructureError(source, f"malformed {kind} file ({type(err).__name__}: {err})") from None
