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
    coordinates     atoms with non-finite coordinates are dropped with a StructureWarning counting them; a
                    file where none is finite is refused, and so is any coordinate beyond +-1e5 A (PDB: beyond
                    what columns 31-54 hold, -999.999..9999.999).
    records         a MODEL record inside an open model or after atoms outside any model, and rows of one mmCIF
                    model split by another's, are refused (``pdb_records`` / ``cif_records``); so is an
                    amino-acid residue whose atom records reappear after other residues (a misplaced duplicate
                    would reorder the sequence). Refusals name the line (or _atom_site row).
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
from pa_geo.io.cif_records import atom_site_lines, locate_row_problem, model_rows
from pa_geo.io.pdb_records import pdb_model_lines
from pa_geo.io.protein import AMINO_ACIDS, BACKBONE_ATOMS, AtomTable, Protein
from pa_geo.io.sniff import bytes_to_text, protein_id_from_path, read_bytes, structure_format

PEPTIDE_BOND_MAX = 2.0  # Angstrom, C(i-1)-N(i)
CA_CA_MAX = 4.2  # Angstrom, fallback when C or N is missing (trans 3.8 A)
WATER_NAMES = frozenset({"HOH", "WAT", "H2O", "DOD", "D2O", "TIP", "TIP3", "SOL"})
# Angstrom; no molecule is 10 micrometres across, and squared distances of such numbers overflow float32 later.
MAX_ABS_COORD = 1e5


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


class AtomRecords:
    """Where each atom of the selected model was written, for error messages: 1-based ``lines`` (None when not
    known, e.g. an mmCIF row spanning lines) and 1-based ``rows`` of the ``_atom_site`` loop (mmCIF only)."""

    def __init__(self, lines: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        self.lines, self.rows = lines, rows

    def name(self, i: int, atoms) -> str:
        """``"line 812 (atom CA of residue A175)"`` for atom ``i`` of ``atoms``."""
        what = (f"atom {atoms.atom_name[i]} of residue {atoms.chain_id[i]}{atoms.res_id[i]}"
                f"{atoms.ins_code[i]}".strip())
        if self.lines is not None:
            return f"line {self.lines[i]} ({what})"
        return f"_atom_site row {self.rows[i]} ({what})" if self.rows is not None else what

    def subset(self, keep: np.ndarray) -> "AtomRecords":
        """The records of the atoms selected by ``keep`` (bool or index array)."""
        return AtomRecords(None if self.lines is None else self.lines[keep],
                           None if self.rows is None else self.rows[keep])


def _load_pdb(path: str, text: str, model: int):
    from biotite.structure.io.pdb import PDBFile

    f = PDBFile.read(io.StringIO(text))
    models = pdb_model_lines(path, f.lines)
    m = _model_index(path, model, len(models))
    atoms = f.get_structure(model=m, altloc="all", extra_fields=["occupancy"])
    idx = np.asarray(models[m - 1], np.int64)
    if len(idx) != atoms.array_length():  # cannot happen once pdb_model_lines passed; never mislabel a line
        raise StructureError(path, f"model {model}: {atoms.array_length()} atoms read, {len(idx)} records found")
    segids = np.array([f.lines[i][72:76].strip() for i in idx], dtype=object)
    return atoms, segids, AtomRecords(lines=idx + 1)


def _load_cif(path: str, text: str, model: int):
    from biotite.structure.io import pdbx

    f = pdbx.CIFFile.read(io.StringIO(text))
    if "atom_site" not in f.block:
        raise StructureError(path, "mmCIF without an _atom_site loop (no coordinates)")
    site = f.block["atom_site"]
    m = _model_index(path, model, pdbx.get_model_count(f))
    line_of_row = atom_site_lines(text, site.row_count)
    rows = model_rows(path, site["pdbx_PDB_model_num"].as_array(np.int64), m, line_of_row)
    atoms = pdbx.get_structure(f, model=m, altloc="all", extra_fields=["occupancy"], use_author_fields=True)
    records = AtomRecords()
    if len(rows) == atoms.array_length():
        records = AtomRecords(None if line_of_row is None else line_of_row[rows], rows + 1)
    return atoms, np.full(atoms.array_length(), "", dtype=object), records


def _load_atoms(path: str, text: str, fmt: str, model: int):
    """biotite AtomArray of one model with all altlocs (``altloc_id``, ``occupancy``), PDB segids and where each
    atom was written (:class:`AtomRecords`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # element guessing, missing CRYST1 etc. are not errors here
        return _load_pdb(path, text, model) if fmt == "pdb" else _load_cif(path, text, model)


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


class StructureWarning(UserWarning):
    """Atoms a structure reader dropped (non-finite coordinates); the message counts them and names the first."""


def _check_coordinates(atoms, source: str, records: AtomRecords) -> np.ndarray:
    """``[A]`` bool of atoms with finite coordinates; refuses a model with none, or with any beyond
    ``MAX_ABS_COORD``; warns when some are dropped."""
    coord = np.asarray(atoms.coord, np.float64)
    finite = np.isfinite(coord).all(-1)
    if not finite.any():
        raise StructureError(source, "no atom has finite coordinates (all NaN/inf)")
    huge = finite & (np.abs(np.where(np.isfinite(coord), coord, 0.0)) > MAX_ABS_COORD).any(-1)
    if huge.any():
        i = int(np.flatnonzero(huge)[0])
        xyz = ", ".join(f"{v:g}" for v in coord[i])
        raise StructureError(source, f"{records.name(i, atoms)}: coordinates ({xyz}) beyond +-{MAX_ABS_COORD:g} A "
                                     f"(not a molecule)")
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        warnings.warn(f"{source}: dropped {int((~finite).sum())} atom(s) with non-finite coordinates (first: "
                      f"{records.name(i, atoms)})", StructureWarning, stacklevel=3)
    return finite


def atoms_to_protein(atoms, segids: np.ndarray, source: str, protein_id: str,
                     chains: list[str] | str | None = None, records: AtomRecords | None = None) -> Protein:
    """Build a :class:`Protein` from one biotite model (all altlocs); see the module docstring for the rules.

    ``records`` says where each atom was written (line numbers for error messages); refusals name it.
    """
    import biotite.structure as struc

    records = records or AtomRecords()
    if atoms.array_length() == 0:
        raise StructureError(source, "no atoms in the selected model")
    keep = _select_altlocs(atoms) & _check_coordinates(atoms, source, records)
    atoms, segids, records = atoms[keep], np.asarray(segids, dtype=object)[keep], records.subset(keep)
    chain = _fix_chain_ids(np.asarray(atoms.chain_id), segids)
    atoms.chain_id = chain.astype(str)
    names = np.asarray(atoms.atom_name).astype(str)
    res_names = np.asarray(atoms.res_name).astype(str)
    hetero = np.asarray(atoms.hetero, bool)

    starts = struc.get_residue_starts(atoms, add_exclusive_stop=True)
    residue_index = np.full(len(names), -1, np.int64)
    seq, chain_ids, numbers, icodes, bb_rows = [], [], [], [], []
    seen: set[tuple[str, int, str]] = set()
    last_group: dict[tuple[str, int, str], tuple[int, int]] = {}  # residue -> (group index, first atom)
    n_amino = 0
    for g, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        rn = res_names[start]
        res_atoms = names[start:stop]
        kind = residue_kind(rn)
        has_ca = "CA" in res_atoms
        if not (kind == "amino" or (kind == "unknown" and not hetero[start] and has_ca)):
            continue
        n_amino += 1
        key = (chain[start], int(atoms.res_id[start]), str(atoms.ins_code[start]))
        if key in last_group and last_group[key][0] != g - 1:  # adjacent groups: altlocs naming other residues
            raise StructureError(source, f"{records.name(int(start), atoms)}: residue {''.join(map(str, key))} "
                                         f"appears again after other residues (first at "
                                         f"{records.name(last_group[key][1], atoms)}): duplicated or out-of-order "
                                         f"atom records")
        last_group[key] = (g, last_group.get(key, (g, int(start)))[1])
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
        atoms, segids, records = _load_atoms(source, text, fmt, model)
        return atoms_to_protein(atoms, segids, source, protein_id_from_path(source), chains, records)
    except StructureError:
        raise
    except Exception as err:  # biotite raises ValueError/IndexError/InvalidFileError/... on malformed records
        kind = "PDB" if fmt == "pdb" else "mmCIF"
        where = locate_row_problem(text) if fmt == "cif" else None
        raise StructureError(source, f"malformed {kind} file: {where}" if where else
                             f"malformed {kind} file ({type(err).__name__}: {err})") from None
