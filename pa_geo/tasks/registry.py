"""The task registry: ``register_task(spec)``, ``get_task(name)``, ``available_tasks()``."""
from __future__ import annotations

import copy
import dataclasses

from pa_geo.errors import ConfigError
from pa_geo.tasks.spec import TaskSpec

_TASKS: dict[str, TaskSpec] = {}
_ALIASES: dict[str, str] = {}


def register_task(spec: TaskSpec, overwrite: bool = False, aliases: tuple[str, ...] = ()) -> TaskSpec:
    """Add ``spec`` under ``spec.name`` (and ``aliases``); a second spec with the same name needs ``overwrite``.

    The spec is checked: split list with train, valid and at least one test split, the primary metric among its
    metrics, a positive output width.
    """
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ConfigError(f"task name {spec.name!r} must be letters, digits and underscores")
    if (spec.name in _TASKS or spec.name in _ALIASES) and not overwrite:
        raise ConfigError(f"task {spec.name!r} is already registered (pass overwrite=True to replace it)")
    if len(spec.splits) < 3 or len(set(spec.splits)) != len(spec.splits):
        raise ConfigError(f"task {spec.name!r}: splits must be distinct train, valid and >= 1 test split, "
                          f"got {spec.splits}")
    if spec.primary_metric not in spec.metrics:
        raise ConfigError(f"task {spec.name!r}: primary metric {spec.primary_metric!r} not in {spec.metrics}")
    if spec.num_outputs < 1:
        raise ConfigError(f"task {spec.name!r}: num_outputs must be >= 1, got {spec.num_outputs}")
    _TASKS[spec.name] = spec
    for alias in aliases:
        _ALIASES[alias] = spec.name
    return spec


def get_task(name: str) -> TaskSpec:
    """A copy of the registered spec ``name`` (or an alias); unknown names raise a one-line ``ConfigError``."""
    key = _ALIASES.get(name, name)
    if key not in _TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(available_tasks())}")
    spec = _TASKS[key]
    # Copy so a caller editing options / metrics (e.g. storing target statistics) does not change the registry.
    return dataclasses.replace(spec, metrics=list(spec.metrics), splits=list(spec.splits),
                               options=copy.deepcopy(spec.options))


def available_tasks() -> list[str]:
    """Registered task names, sorted (aliases not included)."""
    return sorted(_TASKS)


def task_aliases() -> dict[str, str]:
    """Alias -> task name."""
    return dict(_ALIASES)


def unregister_task(name: str) -> None:
    """Remove task ``name`` and its aliases (no error if absent)."""
    _TASKS.pop(name, None)
    for alias in [a for a, n in _ALIASES.items() if n == name]:
        del _ALIASES[alias]
