"""The graph schema: every field pa_geo puts on a PyG ``Data``, with dtype and shape. One place, one truth.

N = residues (residue graph) or atoms (atom graph), E = directed edges (both directions stored), R = residues of
the protein an atom graph was built from.

Residue graph (:func:`pa_geo.graphs.residue_graph`)
    pos              [N, 3]  float32  CA coordinates (Angstrom)
    residue_type     [N]     int64    0..19 standard amino acids in ``AMINO_ACIDS`` order, 20 = X
    chain_index      [N]     int64    index of the residue's chain within its protein
    residue_number   [N]     int64    author residue number
    backbone         [N,4,3] float32  N, CA, C, O (NaN where missing)
    backbone_mask    [N, 4]  bool     which backbone atoms are present
    edge_index       [2, E]  int64    radius / kNN / sequence-neighbour edges, no self loops, symmetric
    edge_attr        [E, EDGE_DIM] float32  RBF(distance) ++ signed sequence separation ++ direction in the
                                            source residue's backbone frame (see ``EDGE_ATTR_LAYOUT``)
    protein_id       str      (a list of str after batching)

Atom graph (:func:`pa_geo.graphs.atom_graph`)
    pos              [N, 3]  float32  atom coordinates
    element          [N]     int64    index into ``ELEMENTS`` (last = other)
    atom_name_type   [N]     int64    index into ``ATOM_NAMES`` (last = other)
    is_hetero        [N]     bool     ligand / water / modified-residue atoms
    atom2residue     [N]     int64    index of the atom's residue among the R residues; incremented by
                                      ``num_residues`` when batched; atoms outside residues point to their
                                      nearest residue and are flagged by ``atom_in_residue`` = False
    atom_in_residue  [N]     bool
    num_residues     int      R (so batching can offset ``atom2residue``)
    edge_index, edge_attr     radius edges, RBF(distance) features
    protein_id       str

Embeddings (attached by :mod:`pa_geo.datasets` from the cache)
    emb_<backbone>_<layer>  [N, D] float32   one field per (backbone, layer), e.g. ``emb_esm1b_33``;
                                             on atom graphs gathered through ``atom2residue``.

Labels (written by datasets, read by task specs)
    y            [1, T] float32 or [1] int64   graph-level target(s)
    node_y       [N] int64 or [N, T] float32   node-level target(s)
    node_y_mask  [N] bool                      which nodes carry a label
"""
from __future__ import annotations

import re

EMBEDDING_PREFIX = "emb_"


def embedding_field(backbone: str, layer: int | str) -> str:
    """Name of the node field holding ``backbone``'s layer ``layer`` embedding, e.g. ``emb_esm1b_33``.

    Backbone names are lower-cased and any character outside ``[a-z0-9]`` becomes ``_``.
    """
    name = re.sub(r"[^a-z0-9]+", "_", str(backbone).lower()).strip("_")
    return f"{EMBEDDING_PREFIX}{name}_{layer}"
