"""Graph pooling operators by name: ``get_pooling(name, in_channels, **kwargs)``, see :mod:`.base` for the contract.

Registered: ``topk``, ``sag``, ``asap`` (node selection, via tgp), ``edge`` (edge contraction, via tgp),
``graclus`` (greedy matching, tgp + torch-cluster), ``voxel`` (spatial grid), ``none`` (identity).
"""
from pa_geo.nn.pooling.base import (POOLINGS, Assignment, GraphPooling, PoolOutput, available_poolings, coarsen_edges,
                                    get_pooling, register_pooling)

# Importing the operator modules registers them.
from pa_geo.nn.pooling import asap, edge, graclus, identity, sag, topk, voxel  # noqa: E402,F401  isort: skip

__all__ = ["POOLINGS", "Assignment", "GraphPooling", "PoolOutput", "available_poolings", "coarsen_edges", "get_pooling",
           "register_pooling"]
