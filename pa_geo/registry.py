"""One registry helper behind every lookup by name (backbones, convolutions, pooling operators, task kinds, tasks).

Rules shared by all of them (PyG's ``torch_geometric/resolver.py`` is the model):

* names are normalised: lower case, ``-`` and spaces become ``_`` (``"ESM-IF1"`` finds ``esm_if1``);
* registering a name twice with the *same* object is a no-op; with a different object it is an error unless
  ``overwrite=True`` (a plugin replacing a built-in must say so);
* an unknown name raises :class:`~pa_geo.errors.ConfigError` on one line, with "did you mean" suggestions and the
  list of known names;
* with ``entry_points=<group>``, installed packages add objects through that entry-point group: each entry point
  names a function that registers them (``demo = "pa_geo.demo.tasks:register_demo_tasks"`` under
  ``[project.entry-points."pa_geo.tasks"]``). They are loaded once, the first time a name is not found or the
  names are listed, so importing the registry's package never imports its plugins.

>>> reg = Registry("widget")
>>> _ = reg.register("Big-One", int)
>>> reg.get("big_one") is int
True
>>> reg.get("big_on")
Traceback (most recent call last):
...
pa_geo.errors.ConfigError: unknown widget 'big_on' (did you mean 'big_one'?); known widgets: big_one
"""
from __future__ import annotations

import difflib
import importlib.metadata
from typing import Callable, Generic, Iterator, TypeVar

from pa_geo.errors import ConfigError

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """``"ESM-IF1"`` -> ``"esm_if1"``: lower case, ``-`` / spaces / dots -> ``_``, stripped."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_").replace(".", "_")


class Registry(Generic[T]):
    """Objects of one kind by name; ``kind`` names them in error messages (``"unknown backbone 'x'"``)."""

    def __init__(self, kind: str, plural: str | None = None, entry_points: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.entry_points = entry_points
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._plugins_loaded = entry_points is None

    def load_plugins(self) -> None:
        """Call every registering function of the :attr:`entry_points` group (once per process)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=self.entry_points):
            entry.load()()

    def register(self, name: str, obj: T, overwrite: bool = False, aliases: tuple[str, ...] = ()) -> T:
        """Add ``obj`` under ``name`` (and ``aliases``); returns ``obj``."""
        key = normalize_name(name)
        if not key or not key.replace("_", "").isalnum():
            raise ConfigError(f"{self.kind} name {name!r} must be letters, digits, '_' or '-'")
        for k in (key, *map(normalize_name, aliases)):
            current = self._items.get(self._aliases.get(k, k))
            if current is not None and current is not obj and not overwrite:
                raise ConfigError(f"{self.kind} {k!r} is already registered to {_describe(current)} "
                                  f"(pass overwrite=True to replace it)")
        self._items[key] = obj
        self._aliases.pop(key, None)
        for alias in aliases:
            self._aliases[normalize_name(alias)] = key
        return obj

    def decorator(self, name: str, overwrite: bool = False, aliases: tuple[str, ...] = (),
                  name_attr: str | None = None) -> Callable[[T], T]:
        """``@registry.decorator("name")`` on a class or function registers it; ``name_attr``: an attribute of the
        registered object set to its normalised name (e.g. ``registry_name``)."""
        def deco(obj: T) -> T:
            self.register(name, obj, overwrite=overwrite, aliases=aliases)
            if name_attr is not None:
                setattr(obj, name_attr, normalize_name(name))
            return obj
        return deco

    def resolve(self, name: str) -> str:
        """The canonical name of ``name`` (or an alias); unknown -> one-line :class:`ConfigError`."""
        key = normalize_name(name)
        key = self._aliases.get(key, key)
        if key not in self._items and not self._plugins_loaded:
            self.load_plugins()
            key = self._aliases.get(normalize_name(name), normalize_name(name))
        if key not in self._items:
            choices = sorted({*self._items, *self._aliases})
            close = difflib.get_close_matches(key, choices, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}{hint}; known {self.plural}: {', '.join(self.names())}")
        return key

    def get(self, name: str) -> T:
        """The object registered as ``name`` (or an alias of it)."""
        return self._items[self.resolve(name)]

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (no error if absent)."""
        key = self._aliases.get(normalize_name(name), normalize_name(name))
        self._items.pop(key, None)
        for alias in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[alias]

    def names(self) -> list[str]:
        """Registered canonical names, sorted (aliases not included)."""
        self.load_plugins()
        return sorted(self._items)

    def aliases(self) -> dict[str, str]:
        """Alias -> canonical name."""
        self.load_plugins()
        return dict(self._aliases)

    def has(self, name: str) -> bool:
        """Whether ``name`` (or an alias) is registered now, without loading plugins."""
        key = normalize_name(name)
        return key in self._items or key in self._aliases

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if not self.has(name):
            self.load_plugins()
        return self.has(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def _describe(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
