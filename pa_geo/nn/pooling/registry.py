"""Pooling registry: operators by name, all built as ``get_pooling(name, in_channels, **kwargs)``.

Ablations swap the name in a config and keep the same ``pool_kwargs``: a keyword that another registered operator
accepts (e.g. ``ratio`` given to ``graclus``) is dropped with a log line; a keyword no operator accepts (a typo)
is a :class:`~pa_geo.errors.ConfigError`. Names follow :class:`pa_geo.registry.Registry`'s rules (normalised,
duplicate rule, "did you mean" in the error).
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, TypeVar

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling.base import GraphPooling
from pa_geo.registry import Registry, normalize_name

log = logging.getLogger(__name__)

POOLINGS: Registry[type[GraphPooling]] = Registry("pooling operator")
P = TypeVar("P", bound=type[GraphPooling])


def register_pooling(name: str, overwrite: bool = False) -> Callable[[P], P]:
    """Class decorator: register a :class:`GraphPooling` subclass under ``name`` in :data:`POOLINGS` (names
    normalised; a different class under a taken name needs ``overwrite=True``)."""

    def deco(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, GraphPooling)):
            raise TypeError(f"register_pooling('{name}') expects a GraphPooling subclass, got {cls!r}")
        POOLINGS.register(name, cls, overwrite=overwrite)
        cls.name = normalize_name(name)
        return cls

    return deco


def available_poolings() -> list[str]:
    """Sorted names of the registered pooling operators."""
    return POOLINGS.names()


def _init_kwargs(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {p for p in params if p not in ("self", "in_channels")}


def get_pooling(name: str, in_channels: int, **kwargs: Any) -> GraphPooling:
    """Build the pooling operator ``name`` for ``in_channels``-wide node features.

    Raises :class:`~pa_geo.errors.ConfigError` for an unknown name (did-you-mean + the known ones) or a keyword that
    no registered operator accepts.
    """
    key = POOLINGS.resolve(name)
    cls = POOLINGS.get(key)
    accepted = _init_kwargs(cls)
    known_anywhere = set().union(*(_init_kwargs(POOLINGS.get(n)) for n in POOLINGS.names()))
    unknown = sorted(set(kwargs) - known_anywhere)
    if unknown:
        raise ConfigError(f"pooling '{key}': unknown option(s) {', '.join(unknown)}; '{key}' takes "
                          f"{', '.join(sorted(accepted)) or 'no options'}")
    dropped = sorted(set(kwargs) - accepted)
    if dropped:
        log.info("pooling '%s' ignores option(s) %s meant for other operators", key, ", ".join(dropped))
    return cls(in_channels, **{k: v for k, v in kwargs.items() if k in accepted})
