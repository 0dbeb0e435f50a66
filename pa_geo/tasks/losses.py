"""Training losses chosen by label type, with optional target standardisation for regression.

Shapes (B graphs, N labelled nodes, P residue pairs, C classes, T tasks):
    regression   preds [B] / [B, 1] / [B, T]   target same numel              -> MSE (on standardised targets)
    binary       logits [B] / [B, 1] / [P]     target 0/1 same numel          -> BCE-with-logits
    multiclass   logits [B, C] / [N, C]        target [B] / [N] int64         -> cross-entropy
    multilabel   logits [B, T]                 target [B, T] 0/1              -> BCE-with-logits over all entries
``mask`` (bool, one entry per label row) drops unlabelled rows (node / pair tasks); multiclass targets equal to
``ignore_index`` are dropped as well.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pa_geo.errors import ConfigError
from pa_geo.tasks.spec import TaskRecord, TaskSpec

LOSS_BY_LABEL = {"regression": "mse", "binary": "bce", "multiclass": "cross_entropy", "multilabel": "bce"}


def label_values(record: TaskRecord) -> np.ndarray:
    """The finite label values of one record as float64 ``[K]`` (node level: the labelled residues only)."""
    arr = np.asarray(record.label, dtype=np.float64).reshape(-1)
    if record.label_mask is not None and arr.shape == np.asarray(record.label_mask).reshape(-1).shape:
        arr = arr[np.asarray(record.label_mask, bool).reshape(-1)]
    return arr[np.isfinite(arr)]


class TargetStats:
    """Running mean / standard deviation of regression labels, one record at a time (the store build streams)."""

    def __init__(self) -> None:
        self.count, self.total, self.total_sq = 0, 0.0, 0.0

    def update(self, record: TaskRecord) -> None:
        """Add the finite labels of ``record``."""
        values = label_values(record)
        self.count += int(values.size)
        self.total += float(values.sum())
        self.total_sq += float(np.square(values).sum())

    def result(self) -> tuple[float, float]:
        """``(mean, std)``; a std of 0 (constant target) is returned as 1; no labels -> :class:`ConfigError`."""
        if self.count == 0:
            raise ConfigError("cannot standardise regression targets: no finite labels in the training records")
        mean = self.total / self.count
        std = float(np.sqrt(max(self.total_sq / self.count - mean * mean, 0.0)))
        return float(mean), std if std > 1e-12 else 1.0


def regression_target_stats(records: Iterable[TaskRecord]) -> tuple[float, float]:
    """Mean and standard deviation of the (finite) regression labels of ``records`` (the train split).

    Node-level labels count every labelled residue. A std of 0 (constant target) is returned as 1.
    """
    stats = TargetStats()
    for r in records:
        stats.update(r)
    return stats.result()


class TaskLoss(nn.Module):
    """The loss of one task. For regression with ``mean``/``std`` set, the model predicts standardised targets:
    the loss compares ``preds`` with ``(target - mean) / std`` and :meth:`denormalize` maps predictions back.
    """

    def __init__(self, kind: str, mean: float | None = None, std: float | None = None,
                 ignore_index: int = -100, pos_weight: Tensor | None = None) -> None:
        super().__init__()
        if kind not in ("mse", "l1", "bce", "cross_entropy"):
            raise ConfigError(f"unknown loss {kind!r}; known: mse, l1, bce, cross_entropy")
        self.kind = kind
        self.ignore_index = ignore_index
        self.register_buffer("mean", torch.tensor(0.0 if mean is None else float(mean)))
        self.register_buffer("std", torch.tensor(1.0 if std is None else float(std)))
        self.register_buffer("pos_weight", pos_weight)

    def normalize(self, target: Tensor) -> Tensor:
        """``(target - mean) / std`` (identity when no statistics were given)."""
        return (target - self.mean) / self.std

    def denormalize(self, preds: Tensor) -> Tensor:
        """Map standardised regression predictions back to label units (identity for classification)."""
        if self.kind in ("mse", "l1"):
            return preds * self.std + self.mean
        return preds

    def forward(self, preds: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean loss over labelled rows; 0 (with grad) when no row is labelled."""
        if self.kind == "cross_entropy":
            target = target.long().reshape(-1)
            logits = preds.reshape(target.shape[0], -1)
            if mask is not None:
                target = target.masked_fill(~mask.reshape(-1).bool(), self.ignore_index)
            if bool((target == self.ignore_index).all()):
                return logits.sum() * 0.0
            return F.cross_entropy(logits, target, ignore_index=self.ignore_index)
        target = target.to(preds.dtype)
        if preds.numel() != target.numel():
            raise ValueError(f"loss: {preds.numel()} predictions for {target.numel()} targets")
        preds = preds.reshape(target.shape)
        if mask is not None:
            mask = mask.bool()
            if mask.shape != target.shape:  # one mask entry per row of a [rows, T] target
                mask = mask.reshape(-1, *([1] * (target.dim() - 1))).expand_as(target)
            preds, target = preds[mask], target[mask]
        if preds.numel() == 0:
            return preds.sum() * 0.0
        if self.kind == "mse":
            return F.mse_loss(preds, self.normalize(target))
        if self.kind == "l1":
            return F.l1_loss(preds, self.normalize(target))
        pos_weight = self.pos_weight
        if pos_weight is not None and target.dim() > 1:
            pos_weight = pos_weight.expand_as(target)
        return F.binary_cross_entropy_with_logits(preds, target, pos_weight=pos_weight)


def build_loss(spec: TaskSpec, target_stats: tuple[float, float] | None = None) -> TaskLoss:
    """The loss for ``spec``: ``spec.loss`` or, for ``"auto"``, the one its label type calls for.

    ``target_stats`` = (mean, std) of the train labels (see :func:`regression_target_stats`) turns on target
    standardisation; it is ignored for classification. ``spec.options["target_stats"]`` is used when given.
    """
    kind = LOSS_BY_LABEL[spec.label_type] if spec.loss == "auto" else spec.loss
    stats = target_stats if target_stats is not None else spec.options.get("target_stats")
    if kind in ("mse", "l1") and stats is not None:
        return TaskLoss(kind, mean=stats[0], std=stats[1])
    return TaskLoss(kind)
