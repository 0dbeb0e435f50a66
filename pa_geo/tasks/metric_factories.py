"""Metrics by name: how to build each one and whether a higher value is better (the metric class's own
``higher_is_better``: the one rule task specs and checkpoint callbacks follow). :mod:`pa_geo.tasks.metrics` builds a
task's metric set from these: :data:`FACTORIES` from the output width and label type, :data:`SPEC_FACTORIES` from
the task's own settings (``q3``: its class names)."""
from __future__ import annotations

import functools
import re
import warnings
from typing import Any, Callable

from torchmetrics import Metric
from torchmetrics import classification as C
from torchmetrics import regression as R

from pa_geo.errors import ConfigError
from pa_geo.tasks.custom_metrics import (ContactPrecisionAtL, PeerContactPrecisionAtL, PerProteinAccuracy,
                                         PerTargetSpearman, ProteinCentricFmax, ThreeStateAccuracy,
                                         dssp_three_state)


class PearsonCorrCoef(R.PearsonCorrCoef):
    """torchmetrics' Pearson r with a direction: torchmetrics leaves it None (either sign is informative); as a
    score to select models on (as PEER / ATOM3D report it) a higher correlation is better."""

    higher_is_better = True


# name -> (label types it applies to, factory(num_outputs, label_type) -> Metric)
FACTORIES: dict[str, tuple[tuple[str, ...], Callable[[int, str], Metric]]] = {
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


def _q3(spec: Any) -> Metric:
    """Q3 of a DSSP task: its class names (``options["class_names"]``, one per output) mapped to H / E / C."""
    mapping = dssp_three_state(spec.options.get("class_names"), spec.name)
    if len(mapping) != spec.num_outputs:
        raise ConfigError(f"task {spec.name!r}: q3 needs one class name per output ({spec.num_outputs}), got "
                          f"{len(mapping)}")
    return ThreeStateAccuracy(mapping)


# name -> (label types, metric class, factory(task spec) -> Metric): metrics that read the task's settings
SPEC_FACTORIES: dict[str, tuple[tuple[str, ...], type[Metric], Callable[[Any], Metric]]] = {
    "q3": (("multiclass",), ThreeStateAccuracy, _q3),  # 8-state DSSP accuracy after H G I -> H, E B -> E, rest C
}
# contact_precision_at_l5 / _at_l2 / _at_l (unordered pairs); peer_contact_precision_at_l5 (PEER's counting)
CONTACT = re.compile(r"^(peer_)?contact_precision_at_l(\d*)$")
PAIR_METRICS = (ContactPrecisionAtL, PeerContactPrecisionAtL)  # fed raw logits + pair_index, not prepared rows
NEEDS = {"group": "group ids [B]", "batch": "batch [N], the protein of each node"}


def metric_names() -> list[str]:
    """Every metric name :func:`build_metrics` understands (``[peer_]contact_precision_at_l<k>`` for any k)."""
    return sorted([*FACTORIES, *SPEC_FACTORIES]) + ["contact_precision_at_l<k>", "peer_contact_precision_at_l<k>"]


def contact_metric(match: re.Match, min_separation: int = 6) -> Metric:
    k = int(match.group(2)) if match.group(2) else 1
    cls = PeerContactPrecisionAtL if match.group(1) else ContactPrecisionAtL
    return cls(k=k, min_separation=min_separation)


@functools.lru_cache(maxsize=None)
def metric_higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better: the metric class's own ``higher_is_better``."""
    m = CONTACT.match(name)
    if m:
        return bool(contact_metric(m).higher_is_better)
    if name in SPEC_FACTORIES:
        return bool(SPEC_FACTORIES[name][1].higher_is_better)
    if name not in FACTORIES:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(metric_names())}")
    types, factory = FACTORIES[name]
    with warnings.catch_warnings():  # e.g. SpearmanCorrCoef's buffer-size notice: nothing is accumulated here
        warnings.simplefilter("ignore")
        direction = factory(2, types[0]).higher_is_better
    if direction is None:
        raise ConfigError(f"metric {name!r} has no direction (higher_is_better is None): it cannot rank models")
    return bool(direction)
