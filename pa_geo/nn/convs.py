"""Graph convolutions by name: ``get_conv(name, in_channels, out_channels, edge_dim=None, **kwargs)``.

Every entry is wrapped in :class:`ConvLayer`, whose ``forward(x, edge_index, edge_attr=None, pos=None)`` is the
same for all, so the predictor swaps convolutions by name. Edge features are used where the PyG conv supports them
(``gat``, ``gatv2``, ``transformer``: attention on ``edge_dim`` features; ``gin`` becomes GINE); ``gcn``,
``graphconv`` and ``sage`` use the topology only. ``e3nn`` is the E(3)-equivariant
:class:`~pa_geo.nn.equivariant_conv.EquivariantConv` (uses ``pos``). Names live in :data:`CONVS`, a
:class:`pa_geo.registry.Registry` (normalised names, duplicate rule, "did you mean" in the error).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor, nn
from torch_geometric import nn as pyg_nn

from pa_geo.errors import ConfigError
from pa_geo.nn.equivariant_conv import EquivariantConv
from pa_geo.registry import Registry

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ConvSpec:
    """A registered convolution: ``builder(in_channels, out_channels, edge_dim, **kwargs) -> nn.Module`` and which
    optional inputs the built module reads."""

    builder: Builder
    uses_edge_attr: bool = False
    uses_pos: bool = False


CONVS: Registry[ConvSpec] = Registry("conv")


class ConvLayer(nn.Module):
    """A named convolution with one call signature: ``[N, in] -> [N, out]``.

    ``uses_edge_attr`` / ``uses_pos``: whether the inner conv reads ``edge_attr [E, edge_dim]`` / ``pos [N, 3]``.
    """

    def __init__(self, name: str, conv: nn.Module, uses_edge_attr: bool, uses_pos: bool) -> None:
        super().__init__()
        self.name, self.conv = name, conv
        self.uses_edge_attr, self.uses_pos = uses_edge_attr, uses_pos

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                pos: Tensor | None = None) -> Tensor:
        """``x [N, in]``, ``edge_index [2, E]``, ``edge_attr [E, edge_dim]``, ``pos [N, 3]`` -> ``[N, out]``."""
        kwargs: dict[str, Any] = {}
        if self.uses_edge_attr and edge_attr is not None:
            kwargs["edge_attr"] = edge_attr
        if self.uses_pos:
            kwargs["pos"] = pos
        return self.conv(x, edge_index, **kwargs)


def register_conv(name: str, uses_edge_attr: bool = False, uses_pos: bool = False,
                  overwrite: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(in_channels, out_channels, edge_dim, **kwargs) -> nn.Module`` as ``name`` in
    :data:`CONVS` (names normalised; a different builder under a taken name needs ``overwrite=True``)."""

    def deco(builder: Builder) -> Builder:
        spec = ConvSpec(builder, uses_edge_attr, uses_pos)
        if not (name in CONVS and CONVS.get(name) == spec):  # the same registration again is a no-op
            CONVS.register(name, spec, overwrite=overwrite)
        return builder

    return deco


def available_convs() -> list[str]:
    """Sorted names of the registered convolutions."""
    return CONVS.names()


def get_conv(name: str, in_channels: int, out_channels: int, edge_dim: int | None = None,
             **kwargs: Any) -> ConvLayer:
    """Build convolution ``name`` (``[N, in_channels] -> [N, out_channels]``); ``edge_dim`` is the width of the
    edge features it will be given (ignored by topology-only convs). Unknown name -> one-line ConfigError."""
    key = CONVS.resolve(name)
    spec = CONVS.get(key)
    try:
        conv = spec.builder(in_channels, out_channels, edge_dim, **kwargs)
    except TypeError as err:
        raise ConfigError(f"conv '{key}': bad options {sorted(kwargs)}: {err}") from err
    return ConvLayer(key, conv, spec.uses_edge_attr and bool(edge_dim), spec.uses_pos)


def _heads(name: str, out_channels: int, heads: int) -> int:
    if heads < 1 or out_channels % heads:
        raise ConfigError(f"conv '{name}': out_channels={out_channels} is not divisible by heads={heads}")
    return out_channels // heads


@register_conv("gcn")
def _gcn(in_channels: int, out_channels: int, edge_dim: int | None, **kw: Any) -> nn.Module:
    return pyg_nn.GCNConv(in_channels, out_channels, **kw)


@register_conv("graphconv")
def _graphconv(in_channels: int, out_channels: int, edge_dim: int | None, aggr: str = "mean",
               **kw: Any) -> nn.Module:
    return pyg_nn.GraphConv(in_channels, out_channels, aggr=aggr, **kw)


@register_conv("sage")
def _sage(in_channels: int, out_channels: int, edge_dim: int | None, **kw: Any) -> nn.Module:
    return pyg_nn.SAGEConv(in_channels, out_channels, **kw)


@register_conv("gin", uses_edge_attr=True)
def _gin(in_channels: int, out_channels: int, edge_dim: int | None, **kw: Any) -> nn.Module:
    mlp = pyg_nn.MLP([in_channels, out_channels, out_channels], norm=None)
    if edge_dim:
        return pyg_nn.GINEConv(mlp, train_eps=True, edge_dim=edge_dim, **kw)
    return pyg_nn.GINConv(mlp, train_eps=True, **kw)


@register_conv("gat", uses_edge_attr=True)
def _gat(in_channels: int, out_channels: int, edge_dim: int | None, heads: int = 4, **kw: Any) -> nn.Module:
    return pyg_nn.GATConv(in_channels, _heads("gat", out_channels, heads), heads=heads, edge_dim=edge_dim, **kw)


@register_conv("gatv2", uses_edge_attr=True)
def _gatv2(in_channels: int, out_channels: int, edge_dim: int | None, heads: int = 4, **kw: Any) -> nn.Module:
    return pyg_nn.GATv2Conv(in_channels, _heads("gatv2", out_channels, heads), heads=heads, edge_dim=edge_dim,
                            **kw)


@register_conv("transformer", uses_edge_attr=True)
def _transformer(in_channels: int, out_channels: int, edge_dim: int | None, heads: int = 4,
                 **kw: Any) -> nn.Module:
    return pyg_nn.TransformerConv(in_channels, _heads("transformer", out_channels, heads), heads=heads,
                                  edge_dim=edge_dim, **kw)


@register_conv("e3nn", uses_edge_attr=True, uses_pos=True)
def _e3nn(in_channels: int, out_channels: int, edge_dim: int | None, **kw: Any) -> nn.Module:
    return EquivariantConv(in_channels, out_channels, edge_dim=edge_dim, **kw)
