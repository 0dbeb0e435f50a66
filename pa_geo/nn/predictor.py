"""MultiScalePredictor: conv -> pool -> readout at each of ``num_scales`` scales, merged into one graph vector,
with every scale's node features lifted back to the input nodes (residues or atoms) for node-level tasks.

Geometry in the convs: a conv that takes edge features (``transformer``, ``gin`` -> GINE, ``gat``, ``gatv2``,
``e3nn``) reads, at every scale, a Gaussian RBF basis of the edge length recomputed from that scale's positions
(zero where an end has no position: sequence-only proteins, residues without coordinates) and, with ``edge_dim``,
the batch's ``edge_attr``: on residue graphs RBF ++ sequence separation ++ same chain ++ the direction to the
neighbour in the source residue's local frame (N-CA-C, or CA(i-1), CA(i), CA(i+1) on CA traces), so ``edge_dim:
21`` (:data:`pa_geo.graphs.schema.EDGE_DIM`) gives distance and direction. Pooled scales carry ``edge_attr``
through the pooling's connect step (:func:`pa_geo.nn.pooling.base.coarsen_edges`): selection pools (``topk``,
``sag``, ``asap``) keep the exact features of the edges between kept nodes (direction in the kept source
residue's frame); clustering pools (``graclus``, ``edge``, ``voxel``) average the features of the merged edges (a
mean of unit directions in the members' frames, shorter where they disagree), while the RBF of the pooled edge
length is always exact for the pooled positions. Topology-only convs (``gcn``, ``graphconv``, ``sage``) read none
of it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation
from torch_geometric.utils import scatter

from pa_geo.errors import ConfigError
from pa_geo.graphs.features import rbf
from pa_geo.nn.convs import get_conv
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.nn.pooling import get_pooling
from pa_geo.nn.profiling import stage

READOUTS = ("mean", "max", "sum", "attention")
MERGES = ("concat", "sum", "attention", "last")


class Readout(nn.Module):
    """Global pooling by name: ``x [K, H], batch [K] -> [B, H]`` (``attention`` = PyG AttentionalAggregation)."""

    def __init__(self, kind: str, hidden_dim: int) -> None:
        super().__init__()
        if kind not in READOUTS:
            raise ConfigError(f"unknown readout '{kind}'; known: {', '.join(READOUTS)}")
        self.kind = kind
        self.attn = AttentionalAggregation(nn.Linear(hidden_dim, 1)) if kind == "attention" else None

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """``x [K, H]``, ``batch [K]`` -> ``[num_graphs, H]`` (a graph without nodes reads out zeros)."""
        if self.attn is not None:
            return self.attn(x, batch, dim_size=num_graphs)
        fn = {"mean": global_mean_pool, "max": global_max_pool, "sum": global_add_pool}[self.kind]
        return fn(x, batch, size=num_graphs)


def _pooled_mask(mask: Tensor, assignment: Any) -> Tensor:
    """``pos_mask`` of the pooled nodes [K]: the kept node's (selection), or all members positioned (clustering)."""
    if assignment.kept is not None:
        return mask[assignment.kept]
    return scatter(mask.to(torch.float), assignment.cluster, dim=0, dim_size=assignment.num_clusters,
                   reduce="min") > 0


class MultiScalePredictor(nn.Module):
    """Hierarchical graph encoder over per-node features.

    Args:
        in_dim: width of the input node features; None = bound from the adapter by :class:`AdapterEncoder`
            (:meth:`bind`), as task heads are bound from the encoder.
        hidden_dim: width H of every scale.
        num_scales: S; scale s runs ``conv -> pool -> readout`` on the graph pooled s times.
        conv: name in :func:`pa_geo.nn.convs.get_conv`; pool: name in :func:`pa_geo.nn.pooling.get_pooling`.
        pool_kwargs: options for every scale's pooling; a list value gives one value per scale
            (e.g. ``{"size": [6, 12, 24]}`` for ``voxel``, ``{"ratio": [0.5, 0.5, 0.25]}``).
        readout: per-scale global pooling, one of ``READOUTS``.
        merge: ``concat`` (graph [B, S*H], node [N, S*H]), ``sum`` (H), ``attention`` (per-graph softmax over scales,
            applied to the graph readouts and to each graph's lifted node features; H) or ``last`` (graph = last
            scale's readout, the "no final merge" ablation; node = sum over scales; H).
        dropout: after every conv.
        edge_dim: width of ``batch.edge_attr`` to use (None: ignore it). Every conv that takes edge features gets
            a Gaussian basis of the edge length (:func:`pa_geo.graphs.features.rbf`, ``num_rbf`` on [0,
            ``rbf_max``] A, recomputed from pooled positions at each scale, zero for an edge with an end without
            position: ``pos_mask``, carried through the poolings) concatenated with the (pooled) ``edge_attr``
            (module docstring).
        conv_kwargs: extra options for :func:`get_conv`.

    Stages run inside profiler scopes ``predictor.scale{s}.conv``, ``predictor.scale{s}.pool``,
    ``predictor.readout`` and ``predictor.merge`` (:func:`pa_geo.nn.profiling.stage`).
    Node output of scale s, per input node: its features at scale s (before that scale's pooling, carried back
    through the cluster assignments of the earlier scales) plus its graph's scale-s readout.
    ``pool="none", num_scales=1`` is the "global pooling only" ablation.
    """

    def __init__(self, in_dim: int | None = None, hidden_dim: int = 128, num_scales: int = 3, conv: str = "gcn",
                 pool: str = "topk", pool_kwargs: dict[str, Any] | None = None, readout: str = "mean",
                 merge: str = "concat", dropout: float = 0.1, edge_dim: int | None = None,
                 conv_kwargs: dict[str, Any] | None = None, num_rbf: int = 16, rbf_max: float = 24.0) -> None:
        super().__init__()
        if num_scales < 1:
            raise ConfigError(f"MultiScalePredictor: num_scales must be >= 1, got {num_scales}")
        if merge not in MERGES:
            raise ConfigError(f"unknown merge '{merge}'; known: {', '.join(MERGES)}")
        self.in_dim: int | None = None
        self.hidden_dim, self.num_scales = int(hidden_dim), int(num_scales)
        self.merge, self.edge_dim = merge, edge_dim
        self.num_rbf, self.rbf_max = int(num_rbf), float(rbf_max)
        self._layers = dict(conv=conv, pool=pool, pool_kwargs=pool_kwargs or {}, readout=readout, dropout=dropout,
                            conv_kwargs=conv_kwargs or {})
        self.graph_dim = hidden_dim * (num_scales if merge == "concat" else 1)
        self.node_dim = self.graph_dim
        if in_dim is not None:
            self.bind(in_dim)

    def bind(self, in_dim: int) -> None:
        """Build the layers for ``in_dim``-wide input node features (once; another width is a ConfigError)."""
        if self.in_dim is not None:
            if int(in_dim) != self.in_dim:
                raise ConfigError(f"MultiScalePredictor: in_dim is {self.in_dim}, not {in_dim}")
            return
        hidden_dim, num_scales, c = self.hidden_dim, self.num_scales, self._layers
        self.in_dim = int(in_dim)
        conv_edge_dim = self.num_rbf + (self.edge_dim or 0)
        self.input = nn.Linear(in_dim, hidden_dim)
        self.convs = nn.ModuleList(get_conv(c["conv"], hidden_dim, hidden_dim, edge_dim=conv_edge_dim,
                                            **c["conv_kwargs"]) for _ in range(num_scales))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_scales))
        self.pools = nn.ModuleList(get_pooling(c["pool"], hidden_dim, **self._scale_kwargs(c["pool_kwargs"], s))
                                   for s in range(num_scales))
        self.readouts = nn.ModuleList(Readout(c["readout"], hidden_dim) for _ in range(num_scales))
        self.scale_score = nn.Linear(hidden_dim, 1) if self.merge == "attention" else None
        self.act, self.dropout = nn.SiLU(), nn.Dropout(c["dropout"])

    @property
    def required_batch_attributes(self) -> list[str]:
        """Batch fields the forward reads: ``batch``, ``edge_index``, ``pos`` (edge lengths; pooling / convs that
        need geometry) and, with ``edge_dim``, ``edge_attr`` (``pos_mask`` too where the graph has it)."""
        return ["batch", "edge_index", "pos", *(["edge_attr"] if self.edge_dim else [])]

    def _scale_kwargs(self, kwargs: dict[str, Any], scale: int) -> dict[str, Any]:
        out = {}
        for key, value in kwargs.items():
            if isinstance(value, (list, tuple)):
                if len(value) != self.num_scales:
                    raise ConfigError(f"pool_kwargs['{key}'] has {len(value)} values for {self.num_scales} scales")
                value = value[scale]
            out[key] = value
        return out

    def _edge_features(self, edge_index: Tensor, pos: Tensor | None, pos_mask: Tensor | None,
                       edge_attr: Tensor | None, num_nodes: int) -> Tensor:
        if pos is None:
            pos = edge_index.new_zeros(num_nodes, 3, dtype=torch.float)
        dist = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)
        feats = rbf(dist, self.rbf_max, self.num_rbf)
        if pos_mask is not None:
            feats = feats * (pos_mask[edge_index[0]] & pos_mask[edge_index[1]]).unsqueeze(-1)
        if self.edge_dim:
            feats = torch.cat([feats, edge_attr.to(feats.dtype)], dim=-1)
        return feats

    def forward(self, x: Tensor, batch: Any) -> EncoderOutput:
        """``x [N, in_dim]`` + a PyG ``Batch``/``Data`` (``edge_index``, ``batch``, ``pos``, ``edge_attr``) ->
        ``EncoderOutput(graph [B, graph_dim], node [N, node_dim], batch [N])``."""
        n = x.size(0)
        if self.in_dim is None:
            raise ConfigError("MultiScalePredictor: in_dim was never bound (pass in_dim, or use it in an "
                              "AdapterEncoder, which binds it to the adapter's width)")
        if x.dim() != 2 or x.size(-1) != self.in_dim:
            raise ConfigError(f"MultiScalePredictor: expected node features [N, {self.in_dim}], got "
                              f"{list(x.shape)}")
        node_batch = getattr(batch, "batch", None)
        node_batch = node_batch if node_batch is not None else x.new_zeros(n, dtype=torch.long)
        num_graphs = int(getattr(batch, "num_graphs", 1) or 1)
        edge_index, pos = batch.edge_index, getattr(batch, "pos", None)
        pos_mask = getattr(batch, "pos_mask", None) if pos is not None else None
        pos_mask = None if pos_mask is None else pos_mask.bool()
        edge_attr = getattr(batch, "edge_attr", None) if self.edge_dim else None
        if self.edge_dim and (edge_attr is None or edge_attr.dim() != 2 or edge_attr.size(-1) != self.edge_dim):
            got = None if edge_attr is None else list(edge_attr.shape)
            raise ConfigError(f"MultiScalePredictor: edge_dim={self.edge_dim} but batch.edge_attr is {got}")

        h, b = self.input(x), node_batch
        to_input = torch.arange(n, device=x.device)  # input node -> node of the current scale
        readouts, lifted = [], []
        for s, (conv, norm, pool, readout) in enumerate(zip(self.convs, self.norms, self.pools, self.readouts)):
            with stage(f"predictor.scale{s}.conv"):
                # topology-only convs (gcn, graphconv, sage) never read edge features: skip the RBF
                feats = self._edge_features(edge_index, pos, pos_mask, edge_attr, h.size(0)) \
                    if conv.uses_edge_attr else None
                h = h + self.dropout(self.act(norm(conv(h, edge_index, feats, pos))))
            with stage(f"predictor.scale{s}.pool"):
                out = pool(h, edge_index, edge_attr, b, pos)
            with stage("predictor.readout"):
                readouts.append(readout(out.x, out.batch, num_graphs))
                # Each input node gets its scale-s node features plus its graph's scale-s readout, so node-level
                # heads see every scale's context and every pooling/readout parameter gets a gradient (DDP needs it).
                lifted.append(h[to_input] + readouts[-1][node_batch])
            to_input = out.assignment.cluster[to_input]
            pos_mask = None if pos_mask is None else _pooled_mask(pos_mask, out.assignment)
            h, edge_index, edge_attr, b, pos = out.x, out.edge_index, out.edge_attr, out.batch, out.pos
        with stage("predictor.merge"):
            graph, node = self._merge(readouts, lifted, node_batch)
        return EncoderOutput(graph=graph, node=node, batch=node_batch)

    def _merge(self, readouts: list[Tensor], lifted: list[Tensor], node_batch: Tensor) -> tuple[Tensor, Tensor]:
        if self.merge == "concat":
            return torch.cat(readouts, dim=-1), torch.cat(lifted, dim=-1)
        if self.merge == "attention":
            stacked = torch.stack(readouts, dim=1)  # [B, S, H]
            weight = torch.softmax(self.scale_score(stacked).squeeze(-1), dim=1)  # [B, S]
            graph = (weight.unsqueeze(-1) * stacked).sum(dim=1)
            node = (weight[node_batch].unsqueeze(-1) * torch.stack(lifted, dim=1)).sum(dim=1)
            return graph, node
        node = torch.stack(lifted).sum(dim=0)
        graph = readouts[-1] if self.merge == "last" else torch.stack(readouts).sum(dim=0)
        return graph, node
