"""fair-esm 2.0.0 compatibility (the one place it lives).

* biotite 1.x shims for ``esm.inverse_folding``: fair-esm imports two names that biotite 1.x removed:
  ``biotite.structure.filter_backbone`` (now ``filter_peptide_backbone``) and ``biotite.structure.io.pdbx.PDBxFile``
  (now ``CIFFile``). :func:`apply` aliases them; call it before ``import esm.inverse_folding``.
"""
from __future__ import annotations


def apply() -> None:
    """Alias the removed biotite names (idempotent; a no-op on biotite versions that still have them)."""
    import biotite.structure as struc
    from biotite.structure.io import pdbx

    if not hasattr(struc, "filter_backbone"):
        struc.filter_backbone = struc.filter_peptide_backbone
    if not hasattr(pdbx, "PDBxFile"):
        pdbx.PDBxFile = pdbx.CIFFile


def import_inverse_folding():
    """Apply the shims, then import and return ``esm.inverse_folding`` (needs torch_scatter + torch_geometric)."""
    apply()
    import esm.inverse_folding

    return esm.inverse_folding
