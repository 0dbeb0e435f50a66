"""Task specs (PEER's 17 tasks, ATOM3D's LBA / PSR / MSP / PPI / RES), task kinds, losses and metrics, and the task
registry: ``register_task(spec)``, ``get_task(name) -> TaskSpec``, ``available_tasks()`` (one
:class:`~pa_geo.registry.Registry`).

``spec.load(root, split)`` reads the benchmark's released files (an iterable of ``TaskRecord``); ``get_kind(spec)``
is what turns records into examples and batches into predictions; ``build_loss(spec, target_stats)`` and
``build_metrics(spec, prefix)`` give what a training loop needs. The table of tasks, splits, metrics and expected
files is in ``docs/tasks.md``. Installed packages add tasks through the ``pa_geo.tasks`` entry-point group (the
demo's tasks: ``pa_geo.demo.tasks:register_demo_tasks``), loaded the first time a name is not found or the names
are listed.
"""
from __future__ import annotations

import copy
import dataclasses

from pa_geo.errors import ConfigError
from pa_geo.registry import Registry
from pa_geo.tasks.atom3d_specs import ATOM3D_ALIASES, ATOM3D_TASKS
from pa_geo.tasks.kinds import KINDS, TaskKind, get_kind
from pa_geo.tasks.losses import TaskLoss, build_loss, regression_target_stats
from pa_geo.tasks.metrics import TaskMetrics, build_metrics
from pa_geo.tasks.peer_tasks import PEER_TASKS
from pa_geo.tasks.spec import TaskSpec

TASKS: Registry[TaskSpec] = Registry("task", entry_points="pa_geo.tasks")


def register_task(spec: TaskSpec, overwrite: bool = False, aliases: tuple[str, ...] = ()) -> TaskSpec:
    """Add ``spec`` under ``spec.name`` (and ``aliases``); a second spec with the same name needs ``overwrite``.

    The spec is checked: split list with train, valid and at least one test split, the primary and reported metrics
    among its metrics, a positive output width, a known task kind.
    """
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ConfigError(f"task name {spec.name!r} must be letters, digits and underscores")
    if len(spec.splits) < 3 or len(set(spec.splits)) != len(spec.splits):
        raise ConfigError(f"task {spec.name!r}: splits must be distinct train, valid and >= 1 test split, "
                          f"got {spec.splits}")
    if spec.primary_metric not in spec.metrics:
        raise ConfigError(f"task {spec.name!r}: primary metric {spec.primary_metric!r} not in {spec.metrics}")
    unknown = [m for m in spec.reported_metrics if m not in spec.metrics]
    if unknown:
        raise ConfigError(f"task {spec.name!r}: reported metric(s) {unknown} not in {spec.metrics}")
    if spec.num_outputs < 1:
        raise ConfigError(f"task {spec.name!r}: num_outputs must be >= 1, got {spec.num_outputs}")
    if not spec.kind:
        raise ConfigError(f"task {spec.name!r}: no task kind fits input {spec.input_kind!r} at level {spec.level!r}; "
                          f"set kind to one of {', '.join(KINDS.names())}")
    KINDS.resolve(spec.kind)
    if TASKS.has(spec.name) and TASKS.resolve(spec.name) != spec.name:
        raise ConfigError(f"task {spec.name!r} is already an alias of {TASKS.resolve(spec.name)!r}")
    return TASKS.register(spec.name, spec, overwrite=overwrite, aliases=aliases)


def get_task(name: str) -> TaskSpec:
    """A copy of the registered spec ``name`` (or an alias); unknown names raise a one-line ``ConfigError``."""
    spec = TASKS.get(name)
    # Copy so a caller editing options / metrics (e.g. storing target statistics) does not change the registry.
    return dataclasses.replace(spec, metrics=list(spec.metrics), splits=list(spec.splits),
                               options=copy.deepcopy(spec.options), reported_metrics=list(spec.reported_metrics))


def available_tasks() -> list[str]:
    """Registered task names, sorted (aliases not included)."""
    return TASKS.names()


def task_aliases() -> dict[str, str]:
    """Alias -> task name."""
    return TASKS.aliases()


def unregister_task(name: str) -> None:
    """Remove task ``name`` and its aliases (no error if absent)."""
    TASKS.unregister(name)


for _spec in PEER_TASKS + ATOM3D_TASKS:
    register_task(_spec, aliases=ATOM3D_ALIASES.get(_spec.name, ()))

__all__ = [
    "KINDS", "TASKS", "TaskKind", "TaskSpec", "TaskLoss", "TaskMetrics", "available_tasks", "build_loss",
    "build_metrics", "get_kind", "get_task", "register_task", "regression_target_stats", "task_aliases",
    "unregister_task",
]
