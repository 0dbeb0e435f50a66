"""GVP-GNN structure encoder (Jing et al. 2021, ICLR) on pa_geo residue graphs, with invariant (scalar) outputs.

Architecture after drorlab/gvp-pytorch ``gvp/models.py`` ``MQAModel`` (the graph-level model of the paper):
``W_v = LayerNorm -> GVP(node_in -> node_h, linear)``, ``W_e = LayerNorm -> GVP(edge_in -> edge_h, linear)``,
``num_layers`` x :class:`~pa_geo.nn.structure_encoders.gvp_layers.GVPConvLayer`, ``W_out = LayerNorm -> GVP(node_h
-> (node_scalars, 0))``; node output = the ``W_out`` scalars, graph output = their per-protein mean (``MQAModel``'s
``scatter_mean``). Vector gating (Jing et al. 2021b) in every GVP, as ESM-GearNet's GVP configs
(``config/PSR/gvp.yaml``: ``vector_gate: True``). Input features: :mod:`~pa_geo.nn.structure_encoders.gvp_features`
(``ProteinGraphDataset``), plus the CA-trace geometry of GVP-CA / ProteinMPNN-CA
(:mod:`~pa_geo.nn.structure_encoders.ca_geometry`): the CA virtual bond angle and virtual dihedrals through each
residue (9 more node scalars: cos, sin and a mask each), and, for a residue without N or C, the pseudo-CB
direction from CA(i-1), CA(i), CA(i+1) as its side-chain vector, so a CA trace has angles and three vectors per node
where phi / psi / omega and the N-CA-C side-chain direction are undefined. The residue type enters as a learned
20-dim embedding appended to the node scalars (``MQAModel(seq_in=True)``'s ``W_s``, here over pa_geo's 21 types).

``sequence_levels``: frozen embedding fields concatenated to the node scalars (ESM-GearNet's serial fusion, its
``config/*/esm_gvp.yaml``: ``GVPGNN`` with ``node_in_dim: [1280, 0]`` after ESM), with ESM-GearNet's
``FusionNetwork(fusion="series")`` output ``[sequence features, GVP features]`` (graph: their means).

Defaults: gvp-pytorch's published graph (k = 30, RBF 16, offset encoding 16, 3 layers, edge (32, 1)) with node
dims (32, 4) instead of (100, 16), which keeps a training step within a few times the demo adapter's on a CPU
(``benchmarks/structure_encoders_step.py`` times each configuration against the adapter).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from pa_geo.errors import ConfigError
from pa_geo.nn.outputs import EncoderOutput, OneWidthEncoder
from pa_geo.nn.structure_encoders.ca_geometry import NUM_ANGLE_FEATURES, ca_angle_features, ca_trace_cb_direction
from pa_geo.nn.structure_encoders.gvp_features import (
    dihedral_features, edge_features, orientation_vectors, sidechain_vector,
)
from pa_geo.nn.structure_encoders.gvp_layers import GVP, GVPConvLayer, GVPLayerNorm
from pa_geo.nn.structure_encoders.inputs import (
    check_fields, knn_edges, node_batch, resolve_sequence_levels, segment_index, sequence_features,
)

NUM_RESIDUE_TYPES = 21
RESIDUE_EMBEDDING_DIM = 20


class GVPEncoder(OneWidthEncoder):
    """GVP-GNN: ``forward(batch) -> EncoderOutput(graph [B, graph_dim], node [N, node_dim], batch [N])``, both
    invariant to rotations and translations of ``pos`` / ``backbone``.

    Args:
        node_scalars / node_vectors: hidden node dims (gvp-pytorch: 100, 16).
        edge_scalars / edge_vectors: hidden edge dims (32, 1).
        num_layers: GVP-GNN layers (3).
        knn_k: CA neighbours per residue (30).
        num_rbf / num_positional: edge RBF and offset-encoding widths (16, 16).
        sequence_levels: frozen embedding fields (name -> width) appended to the node scalars; ``"sequence"``: the
            sequence models' fields among ``levels``; None: none.
        levels: the task's frozen fields, read only through ``sequence_levels="sequence"`` (carried over from the
            adapter a config swaps this encoder in for).
        residue_type: append a learned embedding of ``residue_type`` to the node scalars.
        vector_gate: vector gating in every GVP; dropout: in every layer (0.1).
        concat_sequence_output: with ``sequence_levels``, prepend the sequence features to the outputs
            (ESM-GearNet series fusion).
    """

    def __init__(self, node_scalars: int = 32, node_vectors: int = 4, edge_scalars: int = 32, edge_vectors: int = 1,
                 num_layers: int = 3, knn_k: int = 30, num_rbf: int = 16, num_positional: int = 16,
                 sequence_levels: dict[str, int] | Literal["sequence"] | None = None, residue_type: bool = True,
                 vector_gate: bool = True, dropout: float = 0.1, concat_sequence_output: bool = True,
                 levels: dict[str, int] | None = None) -> None:
        super().__init__()
        sequence_levels = resolve_sequence_levels(levels, sequence_levels, type(self).__name__)
        if min(node_scalars, node_vectors, edge_scalars, edge_vectors, num_layers, knn_k) < 1:
            raise ConfigError("GVPEncoder: node/edge dims, num_layers and knn_k must all be >= 1")
        if sequence_levels is not None and not sequence_levels:
            raise ConfigError("GVPEncoder: sequence_levels is empty (give field -> width, or None)")
        if num_positional % 2:
            raise ConfigError(f"GVPEncoder: num_positional must be even (cos + sin pairs), got {num_positional}")
        self.sequence_levels = dict(sequence_levels) if sequence_levels else None
        self.knn_k, self.num_rbf, self.num_positional = int(knn_k), int(num_rbf), int(num_positional)
        self.residue_embedding = nn.Embedding(NUM_RESIDUE_TYPES, RESIDUE_EMBEDDING_DIM) if residue_type else None
        seq_dim = sum(self.sequence_levels.values()) if self.sequence_levels else 0
        node_in = (6 + NUM_ANGLE_FEATURES + (RESIDUE_EMBEDDING_DIM if residue_type else 0) + seq_dim, 3)
        edge_in = (self.num_rbf + self.num_positional, 1)
        node_h, edge_h = (int(node_scalars), int(node_vectors)), (int(edge_scalars), int(edge_vectors))
        self.embed_nodes = nn.Sequential(GVPLayerNorm(node_in), GVP(node_in, node_h, activations=False,
                                                                    vector_gate=vector_gate))
        self.embed_edges = nn.Sequential(GVPLayerNorm(edge_in), GVP(edge_in, edge_h, activations=False,
                                                                    vector_gate=vector_gate))
        self.layers = nn.ModuleList(GVPConvLayer(node_h, edge_h, dropout=dropout, vector_gate=vector_gate)
                                    for _ in range(num_layers))
        self.out = nn.Sequential(GVPLayerNorm(node_h), GVP(node_h, (node_h[0], 0), vector_gate=vector_gate))
        self.concat_sequence_output = bool(concat_sequence_output and self.sequence_levels)
        self._dim = node_h[0] + (seq_dim if self.concat_sequence_output else 0)

    @property
    def required_batch_attributes(self) -> list[str]:
        """The batch fields ``forward`` reads (ProteinWorkshop's convention)."""
        names = ["pos", "pos_mask", "backbone", "chain_index", "batch"]
        return names + (["residue_type"] if self.residue_embedding is not None else []) + \
            list(self.sequence_levels or {})

    def featurize(self, batch: Data | Batch) -> tuple[tuple[Tensor, Tensor], Tensor, tuple[Tensor, Tensor]]:
        """``((node_s [N, 15 + ...], node_v [N, 3, 3]), edge_index [2, E], (edge_s [E, 32], edge_v [E, 3, 1]))``
        (vectors channels-last: [..., xyz, channel]); node scalars = phi / psi / omega (6) ++ CA angles (9) ++
        residue embedding ++ sequence levels; vectors = CA(i) -> CA(i+1), CA(i) -> CA(i-1), side chain."""
        owner = type(self).__name__
        check_fields(batch, self.required_batch_attributes, owner)
        pos, pos_mask, backbone = batch.pos.float(), batch.pos_mask, batch.backbone.float()
        index, _ = node_batch(batch, pos.shape[0], pos.device)
        segment = segment_index(index, batch.chain_index)
        scalars = [dihedral_features(backbone, segment), ca_angle_features(pos, pos_mask, segment)]
        if self.residue_embedding is not None:
            scalars.append(self.residue_embedding(batch.residue_type))
        if self.sequence_levels:
            scalars.append(sequence_features(batch, self.sequence_levels, owner))
        full = torch.isfinite(backbone[:, :3]).all(-1).all(-1, keepdim=True)
        side = torch.where(full, sidechain_vector(backbone), ca_trace_cb_direction(pos, pos_mask, segment))
        vectors = torch.cat([orientation_vectors(pos, pos_mask, segment), side.unsqueeze(-1)], dim=-1)
        edge_index = knn_edges(pos, pos_mask, index, self.knn_k)
        edges = edge_features(pos, edge_index, segment, self.num_rbf, self.num_positional)
        return (torch.cat(scalars, dim=-1), vectors), edge_index, edges

    def forward(self, batch: Data | Batch) -> EncoderOutput:
        nodes, edge_index, edges = self.featurize(batch)
        index, num_graphs = node_batch(batch, nodes[0].shape[0], nodes[0].device)
        h, e = self.embed_nodes(nodes), self.embed_edges(edges)
        for layer in self.layers:
            h = layer(h, edge_index, e)
        node = self.out(h)[0]
        if self.concat_sequence_output:
            node = torch.cat([sequence_features(batch, self.sequence_levels, type(self).__name__), node], dim=-1)
        return EncoderOutput(graph=global_mean_pool(node, index, size=num_graphs), node=node, batch=index)
