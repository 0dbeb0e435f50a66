"""GearNet-Edge-style structure encoder (and ESM-GearNet-style serial fusion) on pa_geo residue graphs.

Architecture, after TorchDrug ``torchdrug/models/gearnet.py`` (``GeometryAwareRelationalGraphNeuralNetwork``,
registered as ``models.GearNet``) and ``torchdrug/layers/conv.py`` (``GeometricRelationalGraphConv``), Zhang et al.
2023 (ICLR), "Protein Representation Learning by Geometric Structure Pretraining", eq. 1-3:

* graph: :func:`~pa_geo.nn.structure_encoders.relational_graph.gearnet_graph` (sequential offsets -2..2, radius
  10 A and kNN 10 with |i - j| >= 5; 7 relations), rebuilt in every forward from ``pos`` / ``pos_mask``;
* layer l: ``h' = ReLU(BN(W_l [sum_{j in N_1(i)} h_j, ..., sum_{j in N_R(i)} h_j] + W_self h_i))`` (one block of
  ``W_l`` per relation, sums not means), short-cut ``h' + h`` when widths match, then a second BatchNorm (TorchDrug
  applies both: the conv's own and the model's ``batch_norms``);
* edge message passing (GearNet-Edge, ``num_angle_bin=8``): the same relational conv runs on the spatial line graph
  (edge features ``edge_gearnet``, relations = 8 angle bins); after edge layer l its edge states are summed into
  their target's relation slots and passed through node layer l's relational weight ``W_l`` and a ReLU, then
  added to ``h'`` (TorchDrug ``GeometryAwareRelationalGraphNeuralNetwork.forward``);
* readout: every layer's ``h`` concatenated (``concat_hidden``), summed per protein (``readout="sum"``).

Node input: one-hot residue type (21) by default. ``sequence_levels`` gives frozen embedding fields instead: ESM-
GearNet's "series" fusion (DeepGraphLearning/ESM-GearNet ``gearnet/model.py`` ``FusionNetwork``,
``config/EC/esm_gearnet.yaml``: GearNet with ``input_dim: 1280`` reads the ESM residue features), and its output is
``[sequence features, GearNet features]`` per node and ``[mean of sequence features, GearNet readout]`` per protein.
ESM-GearNet feeds the 1280-d features straight into the first conv and runs without edge message passing, as this
encoder does by default; with edge message passing the first edge layer is as wide as the node input, so sequence
features are then first embedded to ``hidden_dim`` by Linear + BatchNorm (the ``embedding_dim`` option of
``GearNetIEConv``, DeepGraphLearning/GearNet ``gearnet/model.py``).

Defaults: the paper's recipe at 1/4 width (paper: 6 layers of 512, GearNet-Edge with edge message passing), edge
message passing off. Forward + backward of one training step (``benchmarks/structure_encoders_step.py``: 8 real
StructureDB chains cropped to 300 residues, 2,400 nodes, ~45k relational edges, ~1M line-graph edges), relative to
the demo's adapter (``ProteinAdapter({"emb_near_8": 256, "emb_proteinmpnn_3": 128}, d_model=64)`` +
``MultiScalePredictor(64, hidden_dim=64, num_scales=3)``), process CPU time with 1 thread on the shared 2-core
machine under load (median of 3; the 2-thread wall times of the one near-idle run are in brackets):

==========================================  ============  ==========  ========================
configuration                                CPU s         x adapter   2 threads, near idle
==========================================  ============  ==========  ========================
adapter (demo defaults)                      0.23          1           0.14 s
128 x 6, no edge message passing (default)   0.19          0.83        0.11 s (0.75x)
64 x 4, no edge message passing              0.055         0.26        0.038 s (0.27x)
64 x 4, edge message passing                 1.03          4.4         0.94 s (6.7x, before the
                                                                       EdgeIndex rewrite)
128 x 6, edge message passing                4.05          17
default + sequence level (256-d), series     0.25          1.08
==========================================  ============  ==========  ========================

Edge message passing costs 4-17x the adapter's step, over the ~3x a CPU demo affords, so it is an option, not the
default: the line graph has ~400 edges per residue, and each edge layer multiplies a [E, 8 * width] aggregate.
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
from pa_geo.nn.structure_encoders.inputs import (
    check_fields, node_batch, resolve_sequence_levels, segment_index, sequence_features,
)
from pa_geo.nn.structure_encoders.relational_graph import (
    MAX_SEQ_DIST, NUM_RESIDUE_TYPES, RelationalGraph, gearnet_edge_features, gearnet_graph, relational_sum,
    spatial_line_graph,
)

READOUTS = {"sum": global_add_pool, "mean": global_mean_pool}


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
        edge_message_passing: GearNet-Edge's line-graph message passing with ``num_angle_bin`` angle relations.
        embedding_dim: Linear + BatchNorm embedding of the node input before the first conv (0: none); default
            none, except ``hidden_dim`` for ``sequence_levels`` with edge message passing.
        short_cut / batch_norm / concat_hidden / readout: as GearNet (readout ``"sum"`` or ``"mean"``).
        dropout: on every layer's conv output (GearNet: none; GearNetIEConv's option).
        concat_sequence_output: with ``sequence_levels``, prepend the sequence features to the node output and their
            per-protein mean to the graph output (ESM-GearNet's ``FusionNetwork(fusion="series")``).
        max_seq_offset / radius / knn_k / min_seq_distance / max_num_neighbors: the graph
            (:func:`~pa_geo.nn.structure_encoders.relational_graph.gearnet_graph`).

    BatchNorm couples the proteins of a training batch (as in GearNet); in eval mode each protein is independent.
    """

    def __init__(self, hidden_dim: int = 128, num_layers: int = 6,
                 sequence_levels: dict[str, int] | Literal["sequence"] | None = None,
                 edge_message_passing: bool = False, num_angle_bin: int = 8, embedding_dim: int | None = None,
                 short_cut: bool = True, batch_norm: bool = True, concat_hidden: bool = True,
                 readout: Literal["sum", "mean"] = "sum", dropout: float = 0.0, concat_sequence_output: bool = True,
                 max_seq_offset: int = 2, radius: float = 10.0, knn_k: int = 10, min_seq_distance: int = 5,
                 max_num_neighbors: int = 32, levels: dict[str, int] | None = None) -> None:
        super().__init__()
        sequence_levels = resolve_sequence_levels(levels, sequence_levels, type(self).__name__)
        if hidden_dim < 1 or num_layers < 1:
            raise ConfigError(f"GearNetEncoder: hidden_dim ({hidden_dim}) and num_layers ({num_layers}) must be >= 1")
        if readout not in READOUTS:
            raise ConfigError(f"GearNetEncoder: unknown readout {readout!r}; known: {', '.join(READOUTS)}")
        if sequence_levels is not None and not sequence_levels:
            raise ConfigError("GearNetEncoder: sequence_levels is empty (give field -> width, or None for one-hot)")
        self.sequence_levels = dict(sequence_levels) if sequence_levels else None
        self.graph_kwargs = dict(max_seq_offset=int(max_seq_offset), radius=float(radius), k=int(knn_k),
                                 min_seq_distance=int(min_seq_distance), max_num_neighbors=int(max_num_neighbors))
        self.num_relation = 2 * int(max_seq_offset) + 3
        self.num_angle_bin = int(num_angle_bin) if edge_message_passing else 0
        self.short_cut, self.concat_hidden, self.readout = short_cut, concat_hidden, readout
        self.concat_sequence_output = bool(concat_sequence_output and self.sequence_levels)
        in_dim = sum(self.sequence_levels.values()) if self.sequence_levels else NUM_RESIDUE_TYPES
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
        self._dim = struct_dim + (in_dim if self.concat_sequence_output else 0)

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
        if self.embed is not None:
            x = self.embed(x)
        line_graph = edge_x = None
        if self.edge_layers is not None:
            line_graph = spatial_line_graph(graph, batch.pos.float(), batch.pos_mask, self.num_angle_bin)
            edge_x = gearnet_edge_features(graph, batch.pos.float(), batch.pos_mask, batch.residue_type)
        hiddens = []
        for i, conv in enumerate(self.layers):
            hidden = self.dropout(conv(x, graph))
            if self.short_cut and hidden.shape == x.shape:
                hidden = hidden + x
            if line_graph is not None:
                edge_x = self.edge_layers[i](edge_x, line_graph)
                update = relational_sum(graph.edge_to_target(), edge_x, graph.num_nodes, self.num_relation)
                hidden = hidden + F.relu(conv.linear(update))
            x = self.norms[i](hidden)
            hiddens.append(x)
        node = torch.cat(hiddens, dim=-1) if self.concat_hidden else hiddens[-1]
        graph_out = READOUTS[self.readout](node, index, size=num_graphs)
        if self.concat_sequence_output:
            graph_out = torch.cat([global_mean_pool(seq, index, size=num_graphs), graph_out], dim=-1)
            node = torch.cat([seq, node], dim=-1)
        return EncoderOutput(graph=graph_out, node=node, batch=index)
