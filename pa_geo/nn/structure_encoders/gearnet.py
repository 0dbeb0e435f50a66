"""GearNet-Edge-style structure encoder (and ESM-GearNet-style serial fusion) on pa_geo residue graphs.

Architecture, after TorchDrug ``torchdrug/models/gearnet.py`` (``GeometryAwareRelationalGraphNeuralNetwork``,
registered as ``models.GearNet``) and ``torchdrug/layers/conv.py`` (``GeometricRelationalGraphConv``), Zhang et al.
2023 (ICLR), "Protein Representation Learning by Geometric Structure Pretraining", eq. 1-3:

* graph: :func:`~pa_geo.nn.structure_encoders.relational_graph.gearnet_graph`, rebuilt in every forward from
  ``pos`` / ``pos_mask``: sequential offsets -4..4 (the paper: -2..2) and radius 10 A / kNN 10 with |i - j| >= 5,
  11 relations. With the paper's offsets the pairs at |i - j| = 3, 4 (a helix's i -> i+3 / i+4 contacts) are in no
  relation at all, since the spatial relations drop |i - j| < 5; ``max_seq_offset=4`` keeps every pair closer than
  ``min_seq_distance`` as its own sequential relation;
* layer l: ``h' = ReLU(BN(W_l [sum_{j in N_1(i)} h_j, ..., sum_{j in N_R(i)} h_j] + W_self h_i))`` (one block of
  ``W_l`` per relation, sums not means), short-cut ``h' + h`` when widths match, then a second BatchNorm (TorchDrug
  applies both: the conv's own and the model's ``batch_norms``);
* edge message passing (GearNet-Edge, ``num_angle_bin=8``): the same relational conv runs on the spatial line graph
  (edge features ``edge_gearnet``, relations = 8 angle bins); after edge layer l its edge states are summed into
  their target's relation slots and passed through node layer l's relational weight ``W_l`` and a ReLU, then
  added to ``h'`` (TorchDrug ``GeometryAwareRelationalGraphNeuralNetwork.forward``);
* readout: every layer's ``h`` concatenated (``concat_hidden``), summed per protein (``readout="sum"``).

Angle information: node inputs get the CA virtual bond angle and the two virtual dihedrals through each residue
(cos, sin and masks: :func:`~pa_geo.nn.structure_encoders.ca_geometry.ca_angle_features`; ``angle_features``),
which exist on CA traces and full backbones alike. Edge message passing adds angles between edges too, in one of
two forms (``edge_message_passing``):

* ``True`` / ``"full"``: the paper's line graph over every edge (on a 146-residue chain: 24 edges and ~640 edge
  pairs per residue); a training step costs several times the adapter's on a CPU;
* ``"sequential"`` (reduced form): the line graph over the sequential edges only (offsets +-1..+-4, no self loop:
  8 edges and ~62 edge pairs per residue, a tenth of the full form), i.e. angle-binned messages between the
  virtual bonds of the chain's local window, summed back into the sequential relation slots; spatial relations
  carry no edge messages. ``benchmarks/structure_encoders_step.py`` measures both.

Node input: one-hot residue type (21) by default. ``sequence_levels`` gives frozen embedding fields instead: ESM-
GearNet's "series" fusion (DeepGraphLearning/ESM-GearNet ``gearnet/model.py`` ``FusionNetwork``,
``config/EC/esm_gearnet.yaml``: GearNet with ``input_dim: 1280`` reads the ESM residue features), and its output is
``[sequence features, GearNet features]`` per node and ``[mean of sequence features, GearNet readout]`` per protein.
ESM-GearNet feeds the 1280-d features straight into the first conv and runs without edge message passing, as this
encoder does by default; with edge message passing the first edge layer is as wide as the node input, so sequence
features are then first embedded to ``hidden_dim`` by Linear + BatchNorm (the ``embedding_dim`` option of
``GearNetIEConv``, DeepGraphLearning/GearNet ``gearnet/model.py``).

Defaults: the paper's recipe at 1/4 width (paper: 6 layers of 512, GearNet-Edge with edge message passing), edge
message passing off: on a CPU its full form costs over ten times the demo adapter's training step (hundreds of edge
pairs per residue, and every edge layer multiplies an [E, 8 * width] aggregate), the sequential form about a
third of that (``benchmarks/structure_encoders_step.py``).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool, global_mean_pool

from pa_geo.errors import ConfigError
from pa_geo.nn.outputs import EncoderOutput, OneWidthEncoder
from pa_geo.nn.structure_encoders.ca_geometry import NUM_ANGLE_FEATURES, ca_angle_features
from pa_geo.nn.structure_encoders.inputs import (
    check_fields, node_batch, resolve_sequence_levels, segment_index, sequence_features,
)
from pa_geo.nn.structure_encoders.relational_graph import (
    MAX_SEQ_DIST, NUM_RESIDUE_TYPES, RelationalGraph, gearnet_edge_features, gearnet_graph, relational_sum,
    sequential_subgraph, spatial_line_graph,
)

READOUTS = {"sum": global_add_pool, "mean": global_mean_pool}
EDGE_MESSAGE_PASSING = (False, True, "full", "sequential")


class RelationalConv(nn.Module):
    """GearNet's geometric relational graph conv: ``x [M, in_dim]`` on a :class:`RelationalGraph` with R relations ->
    ``ReLU(BN(linear([sum over relation-r in-edges of x]_r) + self_loop(x)))`` [M, out_dim]."""

    def __init__(self, in_dim: int, out_dim: int, num_relation: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.num_relation = int(num_relation)
        self.linear = nn.Linear(num_relation * in_dim, out_dim)
        self.self_loop = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim) if batch_norm else nn.Identity()

    def forward(self, x: Tensor, graph: RelationalGraph) -> Tensor:
        agg = relational_sum(graph.adjacency(), x, graph.num_nodes, self.num_relation)
        return F.relu(self.norm(self.linear(agg) + self.self_loop(x)))


class GearNetEncoder(OneWidthEncoder):
    """GearNet-Edge-style encoder: ``forward(batch) -> EncoderOutput(graph [B, graph_dim], node [N, node_dim],
    batch [N])`` (see the module docstring for the architecture and its sources).

    Args:
        hidden_dim / num_layers: width and number of relational conv layers (paper: 512 x 6).
        sequence_levels: frozen embedding fields (name -> width) used as node input instead of the one-hot residue
            type, ESM-GearNet's serial fusion; ``"sequence"``: the sequence models' fields among ``levels``
            (:func:`~pa_geo.nn.structure_encoders.inputs.resolve_sequence_levels`); None: one-hot residue type.
        levels: the task's frozen fields (name -> width), read only through ``sequence_levels="sequence"``; a config
            that swaps the adapter for this encoder carries the adapter's ``levels`` over.
        edge_message_passing: GearNet-Edge's line-graph message passing with ``num_angle_bin`` angle relations:
            ``True`` / ``"full"`` over every edge, ``"sequential"`` over the sequential edges only (module
            docstring), ``False`` none.
        angle_features: append the CA virtual bond angle / dihedral features (9) to the node input.
        embedding_dim: Linear + BatchNorm embedding of the node input before the first conv (0: none); default
            none, except ``hidden_dim`` for ``sequence_levels`` with edge message passing.
        short_cut / batch_norm / concat_hidden / readout: as GearNet (readout ``"sum"`` or ``"mean"``).
        dropout: on every layer's conv output (GearNet: none; GearNetIEConv's option).
        concat_sequence_output: with ``sequence_levels``, prepend the sequence features to the node output and their
            per-protein mean to the graph output (ESM-GearNet's ``FusionNetwork(fusion="series")``).
        max_seq_offset / radius / knn_k / min_seq_distance / max_num_neighbors: the graph (``max_seq_offset`` 4:
            sequential relations for every |i - j| < ``min_seq_distance``)
            (:func:`~pa_geo.nn.structure_encoders.relational_graph.gearnet_graph`).

    BatchNorm couples the proteins of a training batch (as in GearNet); in eval mode each protein is independent.
    """

    def __init__(self, hidden_dim: int = 128, num_layers: int = 6,
                 sequence_levels: dict[str, int] | Literal["sequence"] | None = None,
                 edge_message_passing: bool | Literal["full", "sequential"] = False, num_angle_bin: int = 8,
                 embedding_dim: int | None = None, short_cut: bool = True, batch_norm: bool = True,
                 concat_hidden: bool = True, readout: Literal["sum", "mean"] = "sum", dropout: float = 0.0,
                 concat_sequence_output: bool = True, max_seq_offset: int = 4, radius: float = 10.0,
                 knn_k: int = 10, min_seq_distance: int = 5, max_num_neighbors: int = 32,
                 levels: dict[str, int] | None = None, angle_features: bool = True) -> None:
        super().__init__()
        sequence_levels = resolve_sequence_levels(levels, sequence_levels, type(self).__name__)
        if hidden_dim < 1 or num_layers < 1:
            raise ConfigError(f"GearNetEncoder: hidden_dim ({hidden_dim}) and num_layers ({num_layers}) must be >= 1")
        if readout not in READOUTS:
            raise ConfigError(f"GearNetEncoder: unknown readout {readout!r}; known: {', '.join(READOUTS)}")
        if sequence_levels is not None and not sequence_levels:
            raise ConfigError("GearNetEncoder: sequence_levels is empty (give field -> width, or None for one-hot)")
        if edge_message_passing not in EDGE_MESSAGE_PASSING:
            raise ConfigError(f"GearNetEncoder: edge_message_passing must be one of {EDGE_MESSAGE_PASSING}, "
                              f"got {edge_message_passing!r}")
        self.edge_mode = {True: "full", False: None}.get(edge_message_passing, edge_message_passing)
        self.angle_features = bool(angle_features)
        self.sequence_levels = dict(sequence_levels) if sequence_levels else None
        self.graph_kwargs = dict(max_seq_offset=int(max_seq_offset), radius=float(radius), k=int(knn_k),
                                 min_seq_distance=int(min_seq_distance), max_num_neighbors=int(max_num_neighbors))
        self.num_relation = 2 * int(max_seq_offset) + 3
        self.max_seq_offset = int(max_seq_offset)
        self.num_angle_bin = int(num_angle_bin) if self.edge_mode else 0
        self.short_cut, self.concat_hidden, self.readout = short_cut, concat_hidden, readout
        self.concat_sequence_output = bool(concat_sequence_output and self.sequence_levels)
        seq_dim = sum(self.sequence_levels.values()) if self.sequence_levels else 0
        in_dim = (seq_dim or NUM_RESIDUE_TYPES) + (NUM_ANGLE_FEATURES if self.angle_features else 0)
        if embedding_dim is None:  # the first edge layer is as wide as the node input: keep it narrow
            embedding_dim = hidden_dim if self.sequence_levels and self.num_angle_bin else 0
        self.embed = (nn.Sequential(nn.Linear(in_dim, embedding_dim), nn.BatchNorm1d(embedding_dim))
                      if embedding_dim else None)
        dims = [embedding_dim or in_dim] + [int(hidden_dim)] * int(num_layers)
        self.layers = nn.ModuleList(RelationalConv(dims[i], dims[i + 1], self.num_relation, batch_norm)
                                    for i in range(num_layers))
        self.edge_layers = None
        if self.num_angle_bin:
            edge_dims = [2 * NUM_RESIDUE_TYPES + self.num_relation + MAX_SEQ_DIST + 2] + dims[:-1]
            self.edge_layers = nn.ModuleList(RelationalConv(edge_dims[i], edge_dims[i + 1], self.num_angle_bin,
                                                            batch_norm) for i in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) if batch_norm else nn.Identity() for d in dims[1:])
        self.dropout = nn.Dropout(dropout)
        struct_dim = sum(dims[1:]) if concat_hidden else dims[-1]
        self._dim = struct_dim + (seq_dim if self.concat_sequence_output else 0)

    @property
    def required_batch_attributes(self) -> list[str]:
        """The batch fields ``forward`` reads (ProteinWorkshop's convention)."""
        return ["pos", "pos_mask", "residue_type", "chain_index", "batch", *(self.sequence_levels or {})]

    def build_graph(self, batch: Data | Batch) -> RelationalGraph:
        """The relational graph of ``batch`` (:func:`gearnet_graph` with this encoder's settings)."""
        check_fields(batch, self.required_batch_attributes, type(self).__name__)
        index, _ = node_batch(batch, batch.pos.shape[0], batch.pos.device)
        return gearnet_graph(batch.pos.float(), batch.pos_mask, index, segment_index(index, batch.chain_index),
                             **self.graph_kwargs)

    def forward(self, batch: Data | Batch) -> EncoderOutput:
        owner = type(self).__name__
        graph = self.build_graph(batch)
        index, num_graphs = node_batch(batch, graph.num_nodes, batch.pos.device)
        seq = sequence_features(batch, self.sequence_levels, owner) if self.sequence_levels else None
        x = seq if seq is not None else F.one_hot(batch.residue_type, NUM_RESIDUE_TYPES).float()
        if self.angle_features:
            pos = batch.pos.float()
            x = torch.cat([x, ca_angle_features(pos, batch.pos_mask, segment_index(index, batch.chain_index))], -1)
        if self.embed is not None:
            x = self.embed(x)
        line_graph = edge_x = None
        edge_graph = graph
        if self.edge_layers is not None:
            if self.edge_mode == "sequential":
                edge_graph = sequential_subgraph(graph, self.max_seq_offset)
            line_graph = spatial_line_graph(edge_graph, batch.pos.float(), batch.pos_mask, self.num_angle_bin)
            edge_x = gearnet_edge_features(edge_graph, batch.pos.float(), batch.pos_mask, batch.residue_type)
        hiddens = []
        for i, conv in enumerate(self.layers):
            hidden = self.dropout(conv(x, graph))
            if self.short_cut and hidden.shape == x.shape:
                hidden = hidden + x
            if line_graph is not None:
                edge_x = self.edge_layers[i](edge_x, line_graph)
                update = relational_sum(edge_graph.edge_to_target(), edge_x, graph.num_nodes, self.num_relation)
                hidden = hidden + F.relu(conv.linear(update))
            x = self.norms[i](hidden)
            hiddens.append(x)
        node = torch.cat(hiddens, dim=-1) if self.concat_hidden else hiddens[-1]
        graph_out = READOUTS[self.readout](node, index, size=num_graphs)
        if self.concat_sequence_output:
            graph_out = torch.cat([global_mean_pool(seq, index, size=num_graphs), graph_out], dim=-1)
            node = torch.cat([seq, node], dim=-1)
        return EncoderOutput(graph=graph_out, node=node, batch=index)
