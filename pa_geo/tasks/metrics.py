"""Metrics by name, built for a task spec: torchmetrics where it has them, :mod:`custom_metrics` where not.

``build_metrics(spec, prefix)`` returns a :class:`TaskMetrics` (a torchmetrics ``MetricCollection``) the Lightning
module drives with ``update(preds, target, mask=..., pair_index=..., batch=..., group=...)`` / ``compute()`` /
``reset()``. Whether a metric is better high or low is the metric's own ``higher_is_better``
(:func:`metric_higher_is_better`): the one rule specs and checkpoint callbacks follow.

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

import functools
import inspect
import re
import warnings
from typing import Any, Callable

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics import classification as C
from torchmetrics import regression as R

from pa_geo.errors import ConfigError
from pa_geo.tasks.custom_metrics import (ContactPrecisionAtL, PeerContactPrecisionAtL, PerProteinAccuracy,
                                         PerTargetSpearman, ProteinCentricFmax)
from pa_geo.tasks.spec import TaskSpec


class PearsonCorrCoef(R.PearsonCorrCoef):
    """torchmetrics' Pearson r with a direction: torchmetrics leaves it None (either sign is informative); as a
    score to select models on (as PEER / ATOM3D report it) a higher correlation is better."""

    higher_is_better = True


# name -> (label types it applies to, factory(num_outputs, label_type) -> Metric)
_FACTORIES: dict[str, tuple[tuple[str, ...], Callable[[int, str], Metric]]] = {
    "mse": (("regression",), lambda n, t: R.MeanSquaredError()),
    "rmse": (("regression",), lambda n, t: R.MeanSquaredError(squared=False)),
    "mae": (("regression",), lambda n, t: R.MeanAbsoluteError()),
    "r2": (("regression",), lambda n, t: R.R2Score()),
    "pearson": (("regression",), lambda n, t: PearsonCorrCoef()),
    "spearman": (("regression",), lambda n, t: R.SpearmanCorrCoef()),
    "per_target_spearman": (("regression",), lambda n, t: PerTargetSpearman()),
    "accuracy": (("binary", "multiclass"), lambda n, t: C.BinaryAccuracy() if t == "binary" else
                 C.MulticlassAccuracy(num_classes=n, average="micro")),
    "auroc": (("binary",), lambda n, t: C.BinaryAUROC()),
    "auprc": (("binary",), lambda n, t: C.BinaryAveragePrecision()),
    "f1": (("binary",), lambda n, t: C.BinaryF1Score()),
    "mcc": (("binary",), lambda n, t: C.BinaryMatthewsCorrCoef()),
    "accuracy_macro": (("multiclass",), lambda n, t: C.MulticlassAccuracy(num_classes=n, average="macro")),
    "macro_acc": (("multiclass",), lambda n, t: PerProteinAccuracy()),  # PEER's name: per protein, then mean
    "f1_macro": (("multiclass",), lambda n, t: C.MulticlassF1Score(num_classes=n, average="macro")),
    "top5_accuracy": (("multiclass",), lambda n, t: C.MulticlassAccuracy(num_classes=n, top_k=min(5, n))),
    "fmax": (("multilabel",), lambda n, t: ProteinCentricFmax()),
    "auprc_micro": (("multilabel",), lambda n, t: C.MultilabelAveragePrecision(num_labels=n, average="micro")),
}
# contact_precision_at_l5 / _at_l2 / _at_l (unordered pairs); peer_contact_precision_at_l5 (PEER's counting)
_CONTACT = re.compile(r"^(peer_)?contact_precision_at_l(\d*)$")
_PAIR_METRICS = (ContactPrecisionAtL, PeerContactPrecisionAtL)  # fed raw logits + pair_index, not prepared rows
_NEEDS = {"group": "group ids [B]", "batch": "batch [N], the protein of each node"}


def metric_names() -> list[str]:
    """Every metric name :func:`build_metrics` understands (``[peer_]contact_precision_at_l<k>`` for any k)."""
    return sorted(_FACTORIES) + ["contact_precision_at_l<k>", "peer_contact_precision_at_l<k>"]


def _contact(match: re.Match, min_separation: int = 6) -> Metric:
    k = int(match.group(2)) if match.group(2) else 1
    cls = PeerContactPrecisionAtL if match.group(1) else ContactPrecisionAtL
    return cls(k=k, min_separation=min_separation)


@functools.lru_cache(maxsize=None)
def metric_higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better: the metric class's own ``higher_is_better``."""
    m = _CONTACT.match(name)
    if m:
        return bool(_contact(m).higher_is_better)
    if name not in _FACTORIES:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(metric_names())}")
    types, factory = _FACTORIES[name]
    with warnings.catch_warnings():  # e.g. SpearmanCorrCoef's buffer-size notice: nothing is accumulated here
        warnings.simplefilter("ignore")
        direction = factory(2, types[0]).higher_is_better
    if direction is None:
        raise ConfigError(f"metric {name!r} has no direction (higher_is_better is None): it cannot rank models")
    return bool(direction)


def _make(name: str, spec: TaskSpec) -> Metric:
    m = _CONTACT.match(name)
    if m:
        if spec.level != "residue_pair":
            raise ConfigError(f"task {spec.name!r}: {name} needs a residue_pair task, not {spec.level}")
        return _contact(m, int(spec.options.get("min_separation", 6)))
    if name not in _FACTORIES:
        raise ConfigError(f"task {spec.name!r}: unknown metric {name!r}; known: {', '.join(metric_names())}")
    types, factory = _FACTORIES[name]
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
            if isinstance(metric, _PAIR_METRICS):
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
                raise ValueError(f"{name}: update needs {missing[0]} ({_NEEDS[missing[0]]})")
            metric.update(prepared[0], prepared[1], **kwargs)


def build_metrics(spec: TaskSpec, prefix: str = "", names: list[str] | None = None) -> TaskMetrics:
    """The metric set of ``spec`` (``spec.metrics`` unless ``names`` is given), keys prefixed by ``prefix``."""
    return TaskMetrics(spec, prefix, names)
