"""Batch fields the structure encoders read, and the geometric neighbourhoods they build from them.

Everything here works on a PyG ``Batch`` of residue graphs (fields: :mod:`pa_geo.graphs.schema`) and never lets an
edge cross two proteins: every neighbour search runs with the ``batch`` vector, and only on nodes whose ``pos_mask``
is True (a residue without coordinates has no spatial neighbours).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError
from pa_geo.nn.adapter import level_inputs


def check_fields(batch: Data | Batch, names: list[str], owner: str) -> None:
    """Raise a one-line :class:`ConfigError` naming ``owner`` and the first of ``names`` missing from ``batch``.

    ``"batch"`` is not required (a single ``Data`` has none; :func:`node_batch` supplies zeros).
    """
    for name in names:
        if name != "batch" and not isinstance(getattr(batch, name, None), Tensor):
            raise ConfigError(f"{owner}: the batch has no field {name!r} (it reads {', '.join(names)}; residue "
                              f"graphs from pa_geo.graphs.residue_graph carry the geometric ones, embedding "
                              f"fields come from the embedding cache)")


def node_batch(batch: Data | Batch, num_nodes: int, device: torch.device) -> tuple[Tensor, int]:
    """``batch.batch`` [N] (zeros for a single graph) and the number of graphs B."""
    index = getattr(batch, "batch", None)
    if index is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device), 1
    num_graphs = getattr(batch, "num_graphs", None)
    if num_graphs is None:
        num_graphs = int(index.max()) + 1 if index.numel() else 0
    return index, int(num_graphs)


def sequence_features(batch: Data | Batch, levels: dict[str, int], owner: str) -> Tensor:
    """The frozen embedding fields ``levels`` (name -> width) concatenated: [N, sum of widths] float32."""
    return torch.cat([x.float() for x in level_inputs(batch, levels, owner)], dim=-1)


def segment_index(batch_index: Tensor, chain_index: Tensor) -> Tensor:
    """[N] int64 id that is equal for two nodes iff they are in the same protein and the same chain."""
    return batch_index * (int(chain_index.max()) + 1 if chain_index.numel() else 1) + chain_index


def _on_positioned(pos: Tensor, pos_mask: Tensor, batch_index: Tensor, build) -> Tensor:  # noqa: ANN001
    keep = pos_mask.nonzero().squeeze(-1)
    if keep.numel() < 2:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device)
    edges = build(pos.index_select(0, keep), batch_index.index_select(0, keep))
    return keep[edges]


def radius_edges(pos: Tensor, pos_mask: Tensor, batch_index: Tensor, radius: float,
                 max_num_neighbors: int) -> Tensor:
    """Directed edges [2, E] (row 0 source, row 1 target) from every positioned node j to each positioned target i
    of the same protein with ``|pos_i - pos_j| < radius`` (torch-cluster ``radius_graph``, no self loops; at most
    ``max_num_neighbors`` sources per target)."""
    from torch_cluster import radius_graph

    return _on_positioned(pos, pos_mask, batch_index, lambda p, b: radius_graph(
        p, r=float(radius), batch=b, loop=False, max_num_neighbors=int(max_num_neighbors)))


def knn_edges(pos: Tensor, pos_mask: Tensor, batch_index: Tensor, k: int) -> Tensor:
    """Directed edges [2, E] from each positioned target's ``k`` nearest positioned nodes of the same protein
    (torch-cluster ``knn_graph``, no self loops; row 0 = neighbour = source, row 1 = target)."""
    from torch_cluster import knn_graph

    return _on_positioned(pos, pos_mask, batch_index, lambda p, b: knn_graph(p, k=int(k), batch=b, loop=False))
