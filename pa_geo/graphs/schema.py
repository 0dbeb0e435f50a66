"""The graph schema: every field pa_geo puts on a PyG ``Data``, with dtype and shape. One place, one truth.

N = residues (residue graph) or atoms (atom graph), E = directed edges (both directions stored), R = residues of
the protein an atom graph was built from.

Residue graph (:func:`pa_geo.graphs.residue_graph`)
    pos              [N, 3]  float32  CA coordinates (Angstrom); a residue without CA takes the centroid of its
                                      present backbone atoms, else of its atoms in ``Protein.atoms``; with none
                                      of those (and on sequence-only proteins) pos is zeros and pos_mask False
    pos_mask         [N]     bool     which nodes have a real position (only those get radius / kNN edges)
    residue_type     [N]     int64    0..19 standard amino acids in ``AMINO_ACIDS`` order, 20 = X
    chain_index      [N]     int64    index of the residue's chain within its protein
    residue_number   [N]     int64    author residue number
    backbone         [N,4,3] float32  N, CA, C, O (NaN where missing)
    backbone_mask    [N, 4]  bool     which backbone atoms are present
    geom             [N, GEOM_DIM] float32  invariant per-residue geometry (CA virtual bonds, angles, dihedrals,
                                      phi / psi / omega, neighbour counts; zeros + mask channels where undefined),
                                      layout ``GEOM_LAYOUT`` in :mod:`pa_geo.graphs.geometry`; an adapter level
                                      like an embedding field (``data.extra_levels: [geom]``, width from
                                      ``FIELD_WIDTHS``)
    edge_index       [2, E]  int64    radius / kNN / sequence-neighbour edges, no self loops, symmetric,
                                      coalesced (sorted, no duplicates); row 0 = source, row 1 = target
    edge_attr        [E, EDGE_DIM] float32  RBF(distance) ++ signed sequence separation ++ direction in the
                                            source residue's backbone frame (see ``EDGE_ATTR_LAYOUT``)
    protein_id       str      (a list of str after batching)

Atom graph (:func:`pa_geo.graphs.atom_graph`)
    pos              [N, 3]  float32  atom coordinates
    element          [N]     int64    index into ``ELEMENTS`` (last = other)
    atom_name_type   [N]     int64    index into ``ATOM_NAMES`` (last = other)
    is_hetero        [N]     bool     ligand / water / modified-residue atoms
    is_ligand        [N]     bool     atoms of a task's ligand frame (ATOM3D LBA), else all False
    atom2residue     [N]     int64    index of the atom's residue among the R residues; incremented by
                                      ``num_residues`` when batched; atoms outside residues point to their
                                      nearest residue and are flagged by ``atom_in_residue`` = False
    atom_in_residue  [N]     bool
    num_residues     int      R (so batching can offset ``atom2residue``)
    edge_index, edge_attr     radius edges, [E, num_rbf] RBF(distance) features
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

from pa_geo.graphs.geometry import GEOM_DIM

EMBEDDING_PREFIX = "emb_"
GRAPH_FORMAT = 2  # bumped when the builders' output changes, so example stores built by older code are not reused
GEOM_FIELD = "geom"
# Widths of the per-residue feature fields an encoder may read as a level (``data.extra_levels: [<field>]``): the
# one place a field's width is stated.
FIELD_WIDTHS: dict[str, int] = {GEOM_FIELD: GEOM_DIM}


def embedding_field(backbone: str, layer: int | str) -> str:
    """Name of the node field holding ``backbone``'s layer ``layer`` embedding, e.g. ``emb_esm1b_33``.

    Backbone names are lower-cased and any character outside ``[a-z0-9]`` becomes ``_``.
    """
    name = re.sub(r"[^a-z0-9]+", "_", str(backbone).lower()).strip("_")
    return f"{EMBEDDING_PREFIX}{name}_{layer}"


# ---- residue-graph edge features -------------------------------------------------------------------------------
DEFAULT_NUM_RBF = 16


def edge_attr_layout(num_rbf: int = DEFAULT_NUM_RBF) -> dict[str, slice]:
    """Column slices of a residue graph's ``edge_attr`` for ``num_rbf`` distance RBFs.

    ``rbf``         [num_rbf] Gaussian RBFs of the CA-CA distance (all zero when either end has no position)
    ``seq_sep``     [1] (j - i) / max_seq_sep clipped to [-1, 1] for residues i -> j of one chain, 0 across chains
    ``same_chain``  [1] 1.0 when both residues are in the same chain
    ``direction``   [3] unit vector source -> target in the source residue's local frame: N-CA-C, or the CA-trace
                    frame CA(i-1), CA(i), CA(i+1) where N or C is missing (zeros only without positions)
    """
    return {
        "rbf": slice(0, num_rbf),
        "seq_sep": slice(num_rbf, num_rbf + 1),
        "same_chain": slice(num_rbf + 1, num_rbf + 2),
        "direction": slice(num_rbf + 2, num_rbf + 5),
    }


EDGE_ATTR_LAYOUT: dict[str, slice] = edge_attr_layout(DEFAULT_NUM_RBF)
EDGE_DIM: int = DEFAULT_NUM_RBF + 5  # edge_attr width of a residue graph built with the default num_rbf

# ---- atom-graph vocabularies (index = position; the last index means "other") -----------------------------------
ELEMENTS: tuple[str, ...] = ("C", "N", "O", "S", "P", "SE", "H", "F", "CL", "BR", "I", "FE", "ZN", "MG", "CA",
                             "MN", "CU", "CO", "NI", "NA", "K", "OTHER")
ATOM_NAMES: tuple[str, ...] = (
    "N", "CA", "C", "O", "OXT", "CB", "CG", "CG1", "CG2", "CD", "CD1", "CD2", "CE", "CE1", "CE2", "CE3", "CZ",
    "CZ2", "CZ3", "CH2", "ND1", "ND2", "NE", "NE1", "NE2", "NH1", "NH2", "NZ", "OD1", "OD2", "OE1", "OE2", "OG",
    "OG1", "OH", "SD", "SG", "SE", "OTHER",
)
ELEMENT_INDEX: dict[str, int] = {e: i for i, e in enumerate(ELEMENTS)}
ATOM_NAME_INDEX: dict[str, int] = {n: i for i, n in enumerate(ATOM_NAMES)}
