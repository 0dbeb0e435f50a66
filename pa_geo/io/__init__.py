"""Files -> :class:`Protein`: structure (PDB/mmCIF, optionally gzipped) and FASTA readers, ``pa-geo inspect``."""
from pa_geo.errors import StructureError
from pa_geo.io.fasta import read_fasta
from pa_geo.io.protein import AtomTable, Protein
from pa_geo.io.structure import chain_breaks_from_backbone, read_structure

__all__ = ["AtomTable", "Protein", "StructureError", "chain_breaks_from_backbone", "read_fasta", "read_structure"]
