"""Protein -> PyG graphs: :func:`residue_graph`, :func:`atom_graph`; every field is listed in :mod:`.schema`."""
from __future__ import annotations

import torch

from pa_geo.graphs.atom import AtomGraph, atom_graph
from pa_geo.graphs.geometry import GEOM_DIM, GEOM_LAYOUT, ca_frames, ca_geometry_table, residue_geometry
from pa_geo.graphs.residue import ResidueGraph, residue_graph
from pa_geo.graphs.schema import (ATOM_NAMES, EDGE_ATTR_LAYOUT, EDGE_DIM, ELEMENTS, edge_attr_layout,
                                  embedding_field)

# Processed datasets store the graph class; allow-list ours for torch.load(weights_only=True).
torch.serialization.add_safe_globals([AtomGraph, ResidueGraph])

__all__ = ["ATOM_NAMES", "AtomGraph", "EDGE_ATTR_LAYOUT", "EDGE_DIM", "ELEMENTS", "GEOM_DIM", "GEOM_LAYOUT",
           "ResidueGraph", "atom_graph", "ca_frames", "ca_geometry_table", "edge_attr_layout", "embedding_field",
           "residue_geometry", "residue_graph"]
