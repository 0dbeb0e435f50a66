"""Task specs (PEER's 17 tasks, ATOM3D's LBA / PSR / MSP / PPI / RES), task kinds, losses and metrics.

``get_task(name) -> TaskSpec``; ``spec.load(root, split)`` reads the benchmark's released files (an iterable of
``TaskRecord``); ``get_kind(spec)`` is what turns records into examples and batches into predictions;
``build_loss(spec, target_stats)`` and ``build_metrics(spec, prefix)`` give what a training loop needs.
The table of tasks, splits, metrics and expected files is in ``docs/tasks.md``. The demo's tasks register when
``pa_geo.demo`` is imported.
"""
from __future__ import annotations

from pa_geo.tasks.atom3d_specs import register_atom3d_tasks
from pa_geo.tasks.kinds import KINDS, TaskKind, get_kind
from pa_geo.tasks.losses import TaskLoss, build_loss, regression_target_stats
from pa_geo.tasks.metrics import TaskMetrics, build_metrics, metric_names
from pa_geo.tasks.peer_tasks import register_peer_tasks
from pa_geo.tasks.registry import available_tasks, get_task, register_task
from pa_geo.tasks.spec import TaskRecord, TaskSpec

register_peer_tasks()
register_atom3d_tasks()

__all__ = [
    "KINDS", "TaskKind", "TaskRecord", "TaskSpec", "TaskLoss", "TaskMetrics", "available_tasks", "build_loss",
    "build_metrics", "get_kind", "get_task", "metric_names", "register_task", "regression_target_stats",
]
