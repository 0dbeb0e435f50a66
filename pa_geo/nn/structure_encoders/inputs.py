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


def field_level(field: str) -> str:
    """``"sequence"`` or ``"structure"``: the level of the backbone whose embeddings node field ``field`` holds
    (``emb_<backbone>_<layer>``, :func:`pa_geo.graphs.schema.embedding_field`), read from the backbone registry
    without building the backbone. A field no registered backbone names is a one-line :class:`ConfigError`."""
    import pa_geo.backbones  # noqa: F401 - registers every backbone
    from pa_geo.backbones.base import BACKBONES
    from pa_geo.graphs.schema import embedding_field

    best = None
    for name in BACKBONES.names():
        prefix = embedding_field(name, "")
        layer = field[len(prefix):] if field.startswith(prefix) else ""
        if layer and "_" not in layer and (best is None or len(name) > len(best)):
            best = name
    if best is None:
        raise ConfigError(f"{field!r} is not an embedding field of a registered backbone (emb_<backbone>_<layer>)")
    return str(BACKBONES.get(best).level)


def resolve_sequence_levels(levels: dict[str, int] | None, sequence_levels: dict[str, int] | str | None,
                            owner: str) -> dict[str, int] | None:
    """The frozen node inputs of a structure encoder: ``sequence_levels`` as given (name -> width, or None for
    none), or with ``sequence_levels="sequence"`` the fields of ``levels`` that hold a sequence model's embeddings
    (:func:`field_level`), so one config works on every task whatever its levels are called."""
    if sequence_levels != "sequence":
        if isinstance(sequence_levels, str):
            raise ConfigError(f"{owner}: sequence_levels must be a dict, 'sequence' or None, got {sequence_levels!r}")
        return dict(sequence_levels) if sequence_levels is not None else None
    chosen = {f: d for f, d in (levels or {}).items() if field_level(f) == "sequence"}
    if not chosen:
        raise ConfigError(f"{owner}: sequence_levels='sequence' but levels {sorted(levels or {})} hold no sequence "
                          "model's embeddings")
    return chosen


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
