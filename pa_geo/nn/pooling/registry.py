"""Pooling registry: operators by name, all built as ``get_pooling(name, in_channels, **kwargs)``.

Ablations swap the name in a config and keep the same ``pool_kwargs``: a keyword that another registered operator
accepts (e.g. ``ratio`` given to ``graclus``) is dropped with a log line; a keyword no operator accepts (a typo)
is a :class:`~pa_geo.errors.ConfigError`.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, TypeVar

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling.base import GraphPooling

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[GraphPooling]] = {}
P = TypeVar("P", bound=type[GraphPooling])


def register_pooling(name: str) -> Callable[[P], P]:
    """Class decorator: register a :class:`GraphPooling` subclass under ``name`` (lower case, unique)."""
    key = name.lower()

    def deco(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, GraphPooling)):
            raise TypeError(f"register_pooling('{key}') expects a GraphPooling subclass, got {cls!r}")
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"pooling '{key}' is already registered to {_REGISTRY[key].__name__}")
        cls.name = key
        _REGISTRY[key] = cls
        return cls

    return deco


def available_poolings() -> list[str]:
    """Sorted names of the registered pooling operators."""
    return sorted(_REGISTRY)


def _init_kwargs(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {p for p in params if p not in ("self", "in_channels")}


def get_pooling(name: str, in_channels: int, **kwargs: Any) -> GraphPooling:
    """Build the pooling operator ``name`` for ``in_channels``-wide node features.

    Raises :class:`~pa_geo.errors.ConfigError` for an unknown name (listing the known ones) or a keyword that no
    registered operator accepts.
    """
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown pooling operator '{name}'; known: {', '.join(available_poolings())}")
    cls = _REGISTRY[key]
    accepted = _init_kwargs(cls)
    known_anywhere = set().union(*(_init_kwargs(c) for c in _REGISTRY.values()))
    unknown = sorted(set(kwargs) - known_anywhere)
    if unknown:
        raise ConfigError(f"pooling '{key}': unknown option(s) {', '.join(unknown)}; '{key}' takes "
                          f"{', '.join(sorted(accepted)) or 'no options'}")
    dropped = sorted(set(kwargs) - accepted)
    if dropped:
        log.info("pooling '%s' ignores option(s) %s meant for other operators", key, ", ".join(dropped))
    return cls(in_channels, **{k: v for k, v in kwargs.items() if k in accepted})
