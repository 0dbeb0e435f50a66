"""CA traces: a protein reduced to its CA atoms, and whether a protein is one already.

A CA trace (a cryo-EM trace, a coarse-grained model) has one CA per residue and no N, C or O. A model trained on CA
traces reads every input as one (:func:`ca_trace`), so a full-backbone file gives it exactly what it learned from;
a model of full backbones cannot read a protein in which no residue has N, CA and C (:func:`is_ca_trace`).
"""
from __future__ import annotations

import numpy as np

from pa_geo.io.protein import AtomTable, Protein
from pa_geo.io.structure import chain_breaks_from_backbone


def ca_trace(protein: Protein) -> Protein:
    """The protein with its CA atoms only: ``backbone`` [L, 4, 3] keeps CA (N, C, O become NaN), the atom table
    holds the CA atoms, chain breaks come from CA-CA distances (> 4.2 A). A sequence-only protein is returned as
    it is."""
    if not protein.has_structure:
        return protein
    backbone = np.full_like(protein.backbone, np.nan)
    backbone[:, 1] = protein.backbone[:, 1]
    atoms = protein.atoms
    keep = np.flatnonzero(atoms.name == "CA")
    ca_atoms = AtomTable(atoms.element[keep], atoms.name[keep], atoms.resname[keep],
                         atoms.residue_index[keep], atoms.coords[keep], atoms.hetero[keep], atoms.chain_id[keep])
    return Protein(protein.id, protein.sequence, protein.chain_ids, protein.residue_numbers,
                   protein.insertion_codes, backbone, chain_breaks_from_backbone(backbone, protein.chain_ids),
                   ca_atoms, source=protein.source)


def is_ca_trace(protein: Protein) -> bool:
    """True when the protein has coordinates but no residue has all of N, CA and C (a CA trace, or a file of
    CA atoms and side chains only); sequence-only proteins are not traces."""
    if not protein.has_structure or len(protein) == 0:
        return False
    return not bool(protein.backbone_mask[:, :3].all(1).any())
