"""Metrics by name, built for a task spec: torchmetrics where it has them, :mod:`custom_metrics` where not.

``build_metrics(spec, prefix)`` returns a :class:`TaskMetrics` (a torchmetrics ``MetricCollection``) the Lightning
module drives with ``update(preds, target, mask=..., pair_index=..., batch=..., group=...)`` / ``compute()`` /
``reset()``. The metrics themselves, and whether each is better high or low, are
:mod:`pa_geo.tasks.metric_factories`'.

Inputs to ``update`` (raw head outputs; activations are applied here):
    regression   preds [B] / [B, T] / [N, 1]    target same numel, float
    binary       logits [B] / [B, 1] / [P]      target 0/1
    multiclass   logits [B, C] / [N, C]         target [B] / [N] int64
    multilabel   logits [B, T]                  target [B, T] 0/1
    mask         [rows] bool: rows without a label (node / pair tasks) are dropped before every metric
    batch [N]    node -> protein: node-level per-protein metrics (``macro_acc``) and contact precision
    pair_index [2, P]   residue-pair tasks (contact precision; node indices into ``batch``)
    group [B]    group ids for per-group metrics (PSR target), int64 tensor or a list of ids
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from pa_geo.errors import ConfigError
from pa_geo.tasks.metric_factories import (CONTACT, FACTORIES, NEEDS, PAIR_METRICS, SPEC_FACTORIES,
                                          contact_metric, metric_names)
from pa_geo.tasks.spec import TaskSpec


def _make(name: str, spec: TaskSpec) -> Metric:
    m = CONTACT.match(name)
    if m:
        if spec.level != "residue_pair":
            raise ConfigError(f"task {spec.name!r}: {name} needs a residue_pair task, not {spec.level}")
        return contact_metric(m, int(spec.options.get("min_separation", 6)))
    if name in SPEC_FACTORIES:
        types, _, build = SPEC_FACTORIES[name]
        if spec.label_type not in types:
            raise ConfigError(f"task {spec.name!r}: metric {name!r} does not apply to {spec.label_type} labels")
        return build(spec)
    if name not in FACTORIES:
        raise ConfigError(f"task {spec.name!r}: unknown metric {name!r}; known: {', '.join(metric_names())}")
    types, factory = FACTORIES[name]
    if spec.label_type not in types:
        raise ConfigError(f"task {spec.name!r}: metric {name!r} does not apply to {spec.label_type} labels")
    if name == "macro_acc" and spec.level != "node":
        raise ConfigError(f"task {spec.name!r}: macro_acc averages residues per protein, it needs a node task")
    return factory(spec.num_outputs, spec.label_type)


class TaskMetrics(MetricCollection):
    """The metrics of one task and split, keyed ``<prefix><name>`` (e.g. ``val/spearman``).

    ``update`` prepares the rows once (activation, mask, shapes; see the module docstring) and feeds them to every
    metric with the keyword arguments its ``update`` takes (``group``, ``batch``); contact-precision metrics get the
    raw logits with ``pair_index`` / ``batch`` / ``mask`` instead.
    """

    def __init__(self, spec: TaskSpec, prefix: str = "", names: list[str] | None = None) -> None:
        built = {n: _make(n, spec) for n in (names if names is not None else spec.metrics)}
        super().__init__(built, prefix=prefix or None, compute_groups=False)
        self.spec = spec

    def _prepare(self, preds: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """(preds, target, kept rows [rows] bool or None) ready for row metrics."""
        lt = self.spec.label_type
        if lt == "multiclass":
            target = target.reshape(-1).long()
            preds = preds.reshape(target.shape[0], -1).float()
            keep = target >= 0
            if mask is not None:
                keep &= mask.reshape(-1).bool()
            return preds[keep], target[keep], keep
        if lt == "multilabel":
            target = target.reshape(preds.shape[0], -1)
            preds = torch.sigmoid(preds.float()).reshape(target.shape)
            if mask is None:
                return preds, target.long(), None
            keep = mask.reshape(-1).bool()
            return preds[keep], target[keep].long(), keep
        rows = target.shape[0] if target.dim() > 0 else 1
        preds, target = preds.float().reshape(rows, -1), target.reshape(rows, -1)
        keep = None if mask is None else mask.reshape(-1).bool()
        if keep is not None:
            preds, target = preds[keep], target[keep]
        preds, target = preds.reshape(-1), target.reshape(-1)
        if lt == "binary":
            return torch.sigmoid(preds), target.long(), keep
        return preds, target.float(), keep

    @staticmethod
    def _rows(values: Any, keep: Tensor | None) -> Any:
        if values is None or keep is None:
            return values
        return values[keep] if isinstance(values, Tensor) else [v for v, k in zip(values, keep.tolist()) if k]

    @torch.no_grad()
    def update(self, preds: Tensor, target: Tensor, mask: Tensor | None = None, pair_index: Tensor | None = None,
               batch: Tensor | None = None, group: Any = None) -> None:
        """Accumulate one batch (see the module docstring for shapes)."""
        prepared = None
        for name, metric in self.items(keep_base=True, copy_state=False):
            if isinstance(metric, PAIR_METRICS):
                if pair_index is None or batch is None:
                    raise ValueError(f"{name}: update needs pair_index [2, P] and batch [N]")
                metric.update(preds.detach(), target, pair_index=pair_index, batch=batch, mask=mask)
                continue
            if prepared is None:
                prepared = self._prepare(preds.detach(), target, mask)
                row_batch = batch if self.spec.level == "node" else None
                extras = {"group": self._rows(group, prepared[2]), "batch": self._rows(row_batch, prepared[2])}
            kwargs = {k: v for k, v in extras.items() if k in inspect.signature(metric.update).parameters}
            missing = [k for k, v in kwargs.items() if v is None]
            if missing:
                raise ValueError(f"{name}: update needs {missing[0]} ({NEEDS[missing[0]]})")
            metric.update(prepared[0], prepared[1], **kwargs)


def build_metrics(spec: TaskSpec, prefix: str = "", names: list[str] | None = None) -> TaskMetrics:
    """The metric set of ``spec`` (``spec.metrics`` unless ``names`` is given), keys prefixed by ``prefix``."""
    return TaskMetrics(spec, prefix, names)
