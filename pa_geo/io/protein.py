"""The in-memory protein every later stage reads: sequences, numbering, backbone and the full atom table."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BACKBONE_ATOMS: tuple[str, ...] = ("N", "CA", "C", "O")
# Residue-type vocabulary shared by graphs, datasets and baselines: 20 standard amino acids, then X.
AMINO_ACIDS: str = "ACDEFGHIKLMNPQRSTVWY"
UNKNOWN_AA: str = "X"
AA_TO_INDEX: dict[str, int] = {a: i for i, a in enumerate(AMINO_ACIDS)}


def residue_type_indices(sequence: str) -> np.ndarray:
    """Map a one-letter sequence to indices ``[L]`` int64 in ``0..20`` (20 = X / anything non-standard)."""
    return np.fromiter((AA_TO_INDEX.get(a, 20) for a in sequence.upper()), dtype=np.int64, count=len(sequence))


@dataclass
class AtomTable:
    """Every atom kept from a structure (one model, one altloc per atom), heavy atoms and hydrogens alike.

    Shapes (A = number of atoms):
        element        [A] str   element symbol, upper case (``"C"``, ``"FE"``)
        name           [A] str   atom name (``"CA"``, ``"OXT"``)
        resname        [A] str   residue name as written (``"MSE"``, ``"HOH"``)
        residue_index  [A] int64 index into the protein's residues, -1 for atoms of non-residues (water, ligands)
        coords         [A, 3] float32 Angstrom
        hetero         [A] bool  HETATM records (modified residues included) and anything not a polymer residue
        chain_id       [A] str
    """

    element: np.ndarray
    name: np.ndarray
    resname: np.ndarray
    residue_index: np.ndarray
    coords: np.ndarray
    hetero: np.ndarray
    chain_id: np.ndarray

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @classmethod
    def empty(cls) -> "AtomTable":
        """An atom table with no atoms (sequence-only proteins)."""
        s = np.zeros(0, dtype=object)
        return cls(s, s.copy(), s.copy(), np.zeros(0, np.int64), np.zeros((0, 3), np.float32),
                   np.zeros(0, bool), s.copy())


@dataclass
class Protein:
    """One protein (one or more chains) with residues in file order.

    Shapes (L = residues over all selected chains):
        sequence        str of length L, one letter per residue (``X`` for unknown)
        chain_ids       [L] str   chain id of each residue
        residue_numbers [L] int64 author residue number
        insertion_codes [L] str   insertion code (``""`` when none): 82, 82A, 82B are three residues
        backbone        [L, 4, 3] float32 N, CA, C, O coordinates; NaN where an atom is missing
        chain_breaks    [L] bool  True at residue i when it does not bond to i-1 (C-N > 2 A, or new chain)
        atoms           AtomTable of every kept atom (empty for sequence-only inputs)
    ``has_structure`` is False for FASTA inputs (backbone all NaN, no atoms).
    """

    id: str
    sequence: str
    chain_ids: np.ndarray
    residue_numbers: np.ndarray
    insertion_codes: np.ndarray
    backbone: np.ndarray
    chain_breaks: np.ndarray
    atoms: AtomTable = field(default_factory=AtomTable.empty)
    source: str = ""
    has_structure: bool = True

    def __post_init__(self) -> None:
        L = len(self.sequence)
        for name in ("chain_ids", "residue_numbers", "insertion_codes", "chain_breaks"):
            if len(getattr(self, name)) != L:
                raise ValueError(f"Protein {self.id}: {name} has {len(getattr(self, name))} entries for {L} residues")
        if self.backbone.shape != (L, 4, 3):
            raise ValueError(f"Protein {self.id}: backbone shape {self.backbone.shape}, expected ({L}, 4, 3)")

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def backbone_mask(self) -> np.ndarray:
        """``[L, 4]`` bool: which backbone atoms (N, CA, C, O) are present."""
        return np.isfinite(self.backbone).all(-1)

    @property
    def ca(self) -> np.ndarray:
        """``[L, 3]`` float32 CA coordinates (NaN where missing)."""
        return self.backbone[:, 1]

    @property
    def chains(self) -> list[str]:
        """Chain ids in order of first appearance."""
        return list(dict.fromkeys(self.chain_ids.tolist()))

    @property
    def chain_sequences(self) -> dict[str, str]:
        """One-letter sequence per chain id, in chain order."""
        ids = self.chain_ids
        return {c: "".join(np.asarray(list(self.sequence))[ids == c]) for c in self.chains}

    @property
    def chain_index(self) -> np.ndarray:
        """``[L]`` int64: index of each residue's chain in :attr:`chains`."""
        lookup = {c: i for i, c in enumerate(self.chains)}
        return np.fromiter((lookup[c] for c in self.chain_ids), dtype=np.int64, count=len(self))

    def select_chains(self, chains: list[str]) -> "Protein":
        """A new Protein with only the residues (and atoms) of ``chains``."""
        keep = np.isin(self.chain_ids, chains)
        old_to_new = np.full(len(self), -1, np.int64)
        old_to_new[keep] = np.arange(int(keep.sum()))
        atom_keep = np.isin(self.atoms.chain_id, chains)
        a = self.atoms
        ridx = a.residue_index[atom_keep]
        ridx = np.where(ridx >= 0, old_to_new[np.clip(ridx, 0, None)], -1)
        atoms = AtomTable(a.element[atom_keep], a.name[atom_keep], a.resname[atom_keep], ridx,
                          a.coords[atom_keep], a.hetero[atom_keep], a.chain_id[atom_keep])
        breaks = self.chain_breaks[keep].copy()
        if breaks.size:
            breaks[0] = True
        return Protein(self.id, "".join(np.asarray(list(self.sequence))[keep]) if len(self) else "",
                       self.chain_ids[keep], self.residue_numbers[keep], self.insertion_codes[keep],
                       self.backbone[keep], breaks, atoms, self.source, self.has_structure)

    @classmethod
    def from_sequence(cls, id: str, sequence: str, chain_id: str = "A", source: str = "") -> "Protein":
        """A sequence-only protein (FASTA, PEER sequence tasks): no coordinates, residues numbered from 1."""
        L = len(sequence)
        breaks = np.zeros(L, bool)
        if L:
            breaks[0] = True
        return cls(id, sequence, np.full(L, chain_id, dtype=object), np.arange(1, L + 1, dtype=np.int64),
                   np.full(L, "", dtype=object), np.full((L, 4, 3), np.nan, np.float32), breaks,
                   AtomTable.empty(), source, has_structure=False)
