"""Metrics by name, built for a task spec: torchmetrics where it has them, :mod:`custom_metrics` where not.

``build_metrics(spec, prefix)`` returns a :class:`TaskMetrics` the Lightning module drives with
``update(preds, target, mask=..., pair_index=..., batch=..., group=...)`` / ``compute()`` / ``reset()``.

Inputs to ``update`` (raw head outputs; activations are applied here):
    regression   preds [B] / [B, T] / [N, 1]    target same numel, float
    binary       logits [B] / [B, 1] / [P]      target 0/1
    multiclass   logits [B, C] / [N, C]         target [B] / [N] int64
    multilabel   logits [B, T]                  target [B, T] 0/1
    mask         [rows] bool: rows without a label (node / pair tasks) are dropped before every metric
    pair_index [2, P], batch [N]   residue-pair tasks (contact precision)
    group [B]    group ids for per-group metrics (PSR target), int64 tensor or a list of ids
"""
from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics import classification as C
from torchmetrics import regression as R

from pa_geo.errors import ConfigError
from pa_geo.tasks.custom_metrics import ContactPrecisionAtL, PerTargetSpearman, ProteinCentricFmax
from pa_geo.tasks.spec import TaskSpec

# name -> (label types it applies to, factory(num_outputs) -> Metric)
_FACTORIES: dict[str, tuple[tuple[str, ...], Callable[[int], Metric]]] = {
    "mse": (("regression",), lambda n: R.MeanSquaredError()),
    "rmse": (("regression",), lambda n: R.MeanSquaredError(squared=False)),
    "mae": (("regression",), lambda n: R.MeanAbsoluteError()),
    "r2": (("regression",), lambda n: R.R2Score()),
    "pearson": (("regression",), lambda n: R.PearsonCorrCoef()),
    "spearman": (("regression",), lambda n: R.SpearmanCorrCoef()),
    "per_target_spearman": (("regression",), lambda n: PerTargetSpearman()),
    "accuracy": (("binary", "multiclass"), None),  # resolved by label type below
    "auroc": (("binary",), lambda n: C.BinaryAUROC()),
    "auprc": (("binary",), lambda n: C.BinaryAveragePrecision()),
    "f1": (("binary",), lambda n: C.BinaryF1Score()),
    "mcc": (("binary",), lambda n: C.BinaryMatthewsCorrCoef()),
    "accuracy_macro": (("multiclass",), lambda n: C.MulticlassAccuracy(num_classes=n, average="macro")),
    "f1_macro": (("multiclass",), lambda n: C.MulticlassF1Score(num_classes=n, average="macro")),
    "top5_accuracy": (("multiclass",), lambda n: C.MulticlassAccuracy(num_classes=n, top_k=min(5, n))),
    "fmax": (("multilabel",), lambda n: ProteinCentricFmax()),
    "auprc_micro": (("multilabel",), lambda n: C.MultilabelAveragePrecision(num_labels=n, average="micro")),
}
_CONTACT = re.compile(r"^contact_precision_at_l(\d*)$")  # contact_precision_at_l5, ..._at_l2, ..._at_l
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae"})


def metric_names() -> list[str]:
    """Every metric name :func:`build_metrics` understands (``contact_precision_at_l<k>`` for any k)."""
    return sorted(_FACTORIES) + ["contact_precision_at_l<k>"]


def _make(name: str, spec: TaskSpec) -> tuple[Metric, str]:
    """(metric, input kind) with kind in ``standard`` / ``contact`` / ``group``."""
    m = _CONTACT.match(name)
    if m:
        if spec.level != "residue_pair":
            raise ConfigError(f"task {spec.name!r}: {name} needs a residue_pair task, not {spec.level}")
        k = int(m.group(1)) if m.group(1) else 1
        return ContactPrecisionAtL(k=k, min_separation=int(spec.options.get("min_separation", 6))), "contact"
    if name not in _FACTORIES:
        raise ConfigError(f"task {spec.name!r}: unknown metric {name!r}; known: {', '.join(metric_names())}")
    types, factory = _FACTORIES[name]
    if spec.label_type not in types:
        raise ConfigError(f"task {spec.name!r}: metric {name!r} does not apply to {spec.label_type} labels")
    if name == "accuracy":
        metric = C.BinaryAccuracy() if spec.label_type == "binary" else \
            C.MulticlassAccuracy(num_classes=spec.num_outputs, average="micro")
        return metric, "standard"
    return factory(spec.num_outputs), ("group" if name == "per_target_spearman" else "standard")


class TaskMetrics(nn.Module):
    """The metrics of one task and split, keyed ``<prefix><name>`` (e.g. ``val/spearman``)."""

    def __init__(self, spec: TaskSpec, prefix: str = "", names: list[str] | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.prefix = prefix
        built = {n: _make(n, spec) for n in (names if names is not None else spec.metrics)}
        self.metrics = nn.ModuleDict({n: m for n, (m, _) in built.items()})
        self.kinds = {n: k for n, (_, k) in built.items()}

    def _prepare(self, preds: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        lt = self.spec.label_type
        if lt == "multiclass":
            target = target.reshape(-1).long()
            preds = preds.reshape(target.shape[0], -1).float()
            keep = target >= 0
            if mask is not None:
                keep &= mask.reshape(-1).bool()
            return preds[keep], target[keep]
        if lt == "multilabel":
            target = target.reshape(preds.shape[0], -1)
            preds = torch.sigmoid(preds.float()).reshape(target.shape)
            if mask is not None:
                preds, target = preds[mask.bool()], target[mask.bool()]
            return preds, target.long()
        rows = target.shape[0] if target.dim() > 0 else 1
        preds, target = preds.float().reshape(rows, -1), target.reshape(rows, -1)
        if mask is not None:
            preds, target = preds[mask.reshape(-1).bool()], target[mask.reshape(-1).bool()]
        preds, target = preds.reshape(-1), target.reshape(-1)
        if lt == "binary":
            return torch.sigmoid(preds), target.long()
        return preds, target.float()

    @torch.no_grad()
    def update(self, preds: Tensor, target: Tensor, mask: Tensor | None = None, pair_index: Tensor | None = None,
               batch: Tensor | None = None, group: Any = None) -> None:
        """Accumulate one batch (see the module docstring for shapes)."""
        prepared = None
        for name, metric in self.metrics.items():
            kind = self.kinds[name]
            if kind == "contact":
                if pair_index is None or batch is None:
                    raise ValueError(f"{name}: update needs pair_index [2, P] and batch [N]")
                metric.update(preds.detach(), target, pair_index=pair_index, batch=batch, mask=mask)
                continue
            if prepared is None:
                prepared = self._prepare(preds.detach(), target, mask)
            if kind == "group":
                if group is None:
                    raise ValueError(f"{name}: update needs group ids")
                if mask is not None:
                    keep = mask.reshape(-1).bool()
                    group = group[keep] if isinstance(group, Tensor) else [g for g, k in zip(group, keep) if k]
                metric.update(*prepared, group=group)
            else:
                metric.update(*prepared)

    def compute(self) -> dict[str, Tensor]:
        """``{prefix + name: scalar tensor}`` over everything accumulated since the last reset."""
        return {f"{self.prefix}{n}": m.compute() for n, m in self.metrics.items()}

    def reset(self) -> None:
        """Clear every metric's state."""
        for m in self.metrics.values():
            m.reset()


def build_metrics(spec: TaskSpec, prefix: str = "", names: list[str] | None = None) -> TaskMetrics:
    """The metric set of ``spec`` (``spec.metrics`` unless ``names`` is given), keys prefixed by ``prefix``."""
    return TaskMetrics(spec, prefix, names)
