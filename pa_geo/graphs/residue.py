"""Protein -> residue graph (one node per residue) with the fields listed in :mod:`pa_geo.graphs.schema`.

Decisions (tested in ``tests/graphs/test_residue_graph.py``):

* Every residue is a node. ``pos`` is CA; without CA the centroid of the present backbone atoms, else of the
  residue's atoms in ``Protein.atoms``; a residue with no coordinates at all keeps ``pos`` zeros and
  ``pos_mask`` False and gets sequence-neighbour edges only (no spatial edges).
* Sequence-neighbour edges join residues i and i+1 of the same chain, also across an intra-chain break
  (``chain_breaks``): they are neighbours in the chain's sequence (and in its per-residue embeddings), and the
  distance channels still tell the model how far apart they are. No sequence edge joins two chains.
* ``radius`` and ``k`` can be combined: the edge set is the union of the radius graph and the kNN graph.
* Sequence separation is the index difference j - i within a chain (not the author numbering, which may jump
  or carry insertion codes), clipped to +-``max_seq_sep`` and divided by it; 0 between chains.
* ``max_num_neighbors`` caps the radius neighbours torch-cluster returns per node (an arbitrary subset, not the
  nearest; the edge set is then symmetrised); at 10 A a residue has ~20-40 neighbours, well under the default 64.
* ``edge_index`` is sorted by (source, target); edge features are computed with vectorised torch / numpy ops
  (numpy where arrays are [L, 3]-small and torch's per-call overhead would dominate).
* The local frame of ``direction`` is N-CA-C where N, CA and C exist, else the CA-trace frame of
  :func:`pa_geo.graphs.geometry.ca_frames` (CA(i-1), CA(i), CA(i+1)), so CA traces get real directions.
* ``geom`` (:func:`pa_geo.graphs.geometry.residue_geometry`) is built with every residue graph: per-residue
  invariant geometry that a model can take as one more input level.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from pa_geo.errors import ConfigError
from pa_geo.graphs.features import backbone_frames, rbf, residue_positions, symmetric_edges
from pa_geo.graphs.geometry import ca_frames, residue_geometry
from pa_geo.graphs.schema import DEFAULT_NUM_RBF
from pa_geo.io.protein import Protein, residue_type_indices

_DEFAULT_RBF_MAX = 20.0  # RBF range when only kNN edges are built


class ResidueGraph(Data):
    """A PyG ``Data`` for residue graphs: ``chain_index`` stays a per-protein chain index when batched.

    (PyG's default ``__inc__`` would offset any field whose name contains ``index`` by the node count.)
    """

    def __inc__(self, key: str, value, *args, **kwargs):  # noqa: ANN001 - PyG signature
        if key == "chain_index":
            return 0
        return super().__inc__(key, value, *args, **kwargs)


def _check(radius: float | None, k: int | None, num_rbf: int, max_seq_sep: int, max_num_neighbors: int) -> None:
    if radius is None and k is None:
        raise ConfigError("residue_graph: give radius and/or k (both are None)")
    if radius is not None and not radius > 0:
        raise ConfigError(f"residue_graph: radius must be > 0, got {radius}")
    if k is not None and int(k) < 1:
        raise ConfigError(f"residue_graph: k must be >= 1, got {k}")
    if num_rbf < 1 or max_seq_sep < 1 or max_num_neighbors < 1:
        raise ConfigError(f"residue_graph: num_rbf ({num_rbf}), max_seq_sep ({max_seq_sep}) and "
                          f"max_num_neighbors ({max_num_neighbors}) must be >= 1")


def _spatial_edges(pos: Tensor, pos_mask: np.ndarray, radius: float | None, k: int | None,
                   max_num_neighbors: int) -> tuple[list[Tensor], list[bool]]:
    """Radius / kNN edges among nodes with a position, and whether each edge list is already symmetric."""
    from torch_cluster import knn_graph, radius_graph

    sub = None if pos_mask.all() else torch.from_numpy(np.flatnonzero(pos_mask))
    p = pos if sub is None else pos[sub]
    if p.shape[0] < 2:
        return [], []
    out, symmetric = [], []
    if radius is not None:
        e = radius_graph(p, r=float(radius), loop=False, max_num_neighbors=int(max_num_neighbors))
        out.append(e)
        # symmetric unless some node hit the neighbour cap (then torch-cluster dropped some of its edges)
        symmetric.append(bool(np.bincount(e[1].numpy(), minlength=1).max(initial=0) < max_num_neighbors))
    if k is not None:
        out.append(knn_graph(p, k=min(int(k), p.shape[0] - 1), loop=False))
        symmetric.append(False)
    return (out if sub is None else [sub[e] for e in out]), symmetric


def residue_graph(protein: Protein, radius: float | None = 10.0, k: int | None = None, sequential: bool = True,
                  max_num_neighbors: int = 64, num_rbf: int = DEFAULT_NUM_RBF, max_seq_sep: int = 32) -> Data:
    """Build the residue graph of ``protein`` (schema: :mod:`pa_geo.graphs.schema`).

    Args:
        protein: the protein (L residues); sequence-only proteins get sequence-neighbour edges only.
        radius: CA-CA cutoff in Angstrom for radius edges (None: none).
        k: number of nearest neighbours for kNN edges (None: none).
        sequential: add i <-> i+1 edges within each chain.
        max_num_neighbors: cap on radius neighbours per node.
        num_rbf: number of distance RBFs in ``edge_attr``.
        max_seq_sep: sequence separation at which the separation channel saturates at +-1.

    Returns:
        :class:`ResidueGraph` with ``pos`` [L, 3], ``pos_mask`` [L], ``residue_type`` [L], ``chain_index`` [L],
        ``residue_number`` [L], ``backbone`` [L, 4, 3], ``backbone_mask`` [L, 4], ``geom`` [L, GEOM_DIM],
        ``edge_index`` [2, E],
        ``edge_attr`` [E, num_rbf + 5] (layout: :func:`pa_geo.graphs.schema.edge_attr_layout`), ``protein_id``.
    """
    _check(radius, k, num_rbf, max_seq_sep, max_num_neighbors)
    L = len(protein)
    bb_np = np.ascontiguousarray(protein.backbone, dtype=np.float32)
    chain_np = protein.chain_index
    chain = torch.from_numpy(chain_np)
    if protein.has_structure:
        pos_np, mask_np = residue_positions(bb_np, protein.atoms.residue_index, protein.atoms.coords)
    else:
        pos_np, mask_np = np.zeros((L, 3), np.float32), np.zeros(L, bool)
    pos, pos_mask = torch.from_numpy(pos_np), torch.from_numpy(mask_np)

    parts, symmetric = (_spatial_edges(pos, mask_np, radius, k, max_num_neighbors) if protein.has_structure
                        else ([], []))
    if sequential and L > 1:
        i = np.flatnonzero(chain_np[:-1] == chain_np[1:])
        parts.append(torch.from_numpy(np.stack([i, i + 1])))
        symmetric.append(False)
    ei = symmetric_edges(parts, L, symmetric)

    src, dst = ei[0], ei[1]
    E = src.shape[0]
    diff = pos.index_select(0, dst) - pos.index_select(0, src)
    dist = torch.linalg.vector_norm(diff, dim=-1)
    rbf_feat = rbf(dist, float(radius) if radius is not None else _DEFAULT_RBF_MAX, num_rbf)  # contiguous: fast
    other = torch.empty(E, 5, dtype=torch.float32)  # seq_sep, same_chain, direction (see edge_attr_layout)
    all_spatial = bool(mask_np.all())
    if not all_spatial:
        spatial = pos_mask.index_select(0, src) & pos_mask.index_select(0, dst)
        rbf_feat.mul_(spatial.unsqueeze(-1))
    same_chain = chain.index_select(0, src) == chain.index_select(0, dst)
    other[:, 0] = (dst - src).clamp_(-max_seq_sep, max_seq_sep).mul_(same_chain)
    other[:, 0] /= max_seq_sep
    other[:, 1] = same_chain
    scale = 1.0 / dist.clamp_min(1e-6)
    scale = scale * (dist > 1e-6) if all_spatial else scale * ((dist > 1e-6) & spatial)
    unit = diff * scale.unsqueeze(-1)
    frames = backbone_frames(bb_np)
    no_frame = ~frames.abs().sum((1, 2)).gt(0)
    if bool(no_frame.any()) and bool(mask_np.any()):
        frames[no_frame] = torch.from_numpy(ca_frames(pos_np, mask_np, chain_np))[no_frame]
    src_frames = frames.view(L, 9).index_select(0, src).view(E, 3, 3)
    other[:, 2:] = torch.bmm(src_frames, unit.unsqueeze(-1)).squeeze(-1)
    edge_attr = torch.cat([rbf_feat, other], dim=1)

    return ResidueGraph(
        pos=pos, pos_mask=pos_mask,
        residue_type=torch.from_numpy(residue_type_indices(protein.sequence)),
        chain_index=chain,
        residue_number=torch.from_numpy(np.asarray(protein.residue_numbers, dtype=np.int64)),
        backbone=torch.from_numpy(bb_np), backbone_mask=torch.from_numpy(np.isfinite(bb_np).all(-1)),
        geom=torch.from_numpy(residue_geometry(bb_np, pos_np, mask_np, chain_np)),
        edge_index=ei, edge_attr=edge_attr, protein_id=protein.id, num_nodes=L,
    )
