"""Metrics torchmetrics lacks: contact precision@L/k (two countings), PEER's per-protein ``macro_acc``,
protein-centric Fmax, per-target mean Spearman, Q3 of a DSSP classifier (:class:`ThreeStateAccuracy`)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional import spearman_corrcoef

from pa_geo.errors import ConfigError
from pa_geo.formats.structuredb import DSSP_LETTERS, SS3_CLASSES, SS8_TO_SS3


class ContactPrecisionAtL(Metric):
    """Contact precision at L/k over unordered pairs, averaged over proteins (metric ``contact_precision_at_l<k>``).

    For each protein of length L: the ``L // k`` residue pairs with the highest scores among pairs with
    ``|i - j| >= min_separation`` (and a labelled mask); precision = fraction of them that are true contacts.
    Unordered pairs: (i, j) and (j, i) count once (the higher score is kept). A protein with fewer candidate pairs
    than ``L // k`` is scored on the pairs it has; proteins with ``L // k == 0`` or no candidate pair are skipped.
    PEER's own counting is :class:`PeerContactPrecisionAtL`.

    ``update(preds [P], target [P], pair_index [2, P], batch [N], mask [P] | None)``: ``pair_index`` holds node
    indices into the batch (PyG layout: a protein's residues are contiguous and in sequence order, so ``|i - j|``
    is the sequence separation), ``batch [N]`` maps nodes to proteins (L = nodes of that protein).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, k: int = 5, min_separation: int = 6, **kwargs) -> None:
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"{type(self).__name__}: k must be >= 1, got {k}")
        self.k = int(k)
        self.min_separation = int(min_separation)
        self.add_state("precision_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_proteins", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, pair_index: Tensor, batch: Tensor,
               mask: Tensor | None = None) -> None:  # noqa: D102
        preds, target = preds.reshape(-1).float(), target.reshape(-1)
        lo = torch.minimum(pair_index[0], pair_index[1]).long()
        hi = torch.maximum(pair_index[0], pair_index[1]).long()
        keep = (hi - lo) >= self.min_separation
        if mask is not None:
            keep &= mask.reshape(-1).bool()
        preds, target, lo, hi = preds[keep], target[keep], lo[keep], hi[keep]
        num_nodes = batch.numel()
        key, inverse = torch.unique(lo * num_nodes + hi, return_inverse=True)
        best = torch.full((key.numel(),), float("-inf"), device=preds.device)
        best = best.scatter_reduce(0, inverse, preds, reduce="amax")
        label = torch.zeros(key.numel(), dtype=torch.bool, device=preds.device)
        label = label.scatter_reduce(0, inverse, target.bool(), reduce="amax")
        pair_protein = batch.long()[torch.div(key, num_nodes, rounding_mode="floor")]
        lengths = torch.bincount(batch.long())
        for b in torch.unique(pair_protein).tolist():
            n = int(lengths[b]) // self.k
            sel = pair_protein == b
            if n == 0:
                continue
            top = torch.topk(best[sel], min(n, int(sel.sum()))).indices
            self.precision_sum += label[sel][top].double().sum() / top.numel()
            self.num_proteins += 1

    def compute(self) -> Tensor:  # noqa: D102
        if int(self.num_proteins) == 0:
            return torch.tensor(float("nan"))
        return (self.precision_sum / self.num_proteins).float()


class ProteinCentricFmax(Metric):
    """CAFA protein-centric Fmax for multilabel predictions (GO / EC).

    For each threshold t in 0.00, 0.01, .., 1.00: precision averaged over proteins with at least one score >= t,
    recall averaged over proteins with at least one true label; Fmax = max_t 2PR / (P + R).
    ``update(preds [B, T] probabilities, target [B, T] 0/1)``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_thresholds: int = 101, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_thresholds = num_thresholds
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:  # noqa: D102
        self.preds.append(preds.detach().float())
        self.target.append(target.detach().bool())

    def compute(self) -> Tensor:  # noqa: D102
        preds = torch.cat(self.preds) if isinstance(self.preds, list) else self.preds
        target = torch.cat(self.target) if isinstance(self.target, list) else self.target
        annotated = target.any(1)
        if not bool(annotated.any()):
            return torch.tensor(float("nan"))
        best = torch.tensor(0.0)
        for t in torch.linspace(0, 1, self.num_thresholds).tolist():
            pos = preds >= t
            tp = (pos & target).sum(1).float()
            has_pred = pos.any(1)
            if not bool(has_pred.any()):
                continue
            precision = (tp[has_pred] / pos[has_pred].sum(1)).mean()
            recall = (tp[annotated] / target[annotated].sum(1)).mean()
            if precision + recall > 0:
                best = torch.maximum(best, 2 * precision * recall / (precision + recall))
        return best


class PerTargetSpearman(Metric):
    """Spearman correlation computed within each group (PSR: the decoys of one CASP target), then averaged.

    Groups with fewer than 2 entries or a constant prediction / target are skipped.
    ``update(preds [B], target [B], group [B] int64 tensor or a sequence of B hashable ids)``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("group", default=[], dist_reduce_fx="cat")
        self._group_ids: dict[object, int] = {}

    def update(self, preds: Tensor, target: Tensor, group: Tensor | Sequence) -> None:  # noqa: D102
        if not isinstance(group, Tensor):
            group = torch.tensor([self._group_ids.setdefault(g, len(self._group_ids)) for g in group],
                                 dtype=torch.long, device=preds.device)
        self.preds.append(preds.detach().reshape(-1).float())
        self.target.append(target.detach().reshape(-1).float())
        self.group.append(group.reshape(-1).long())

    def compute(self) -> Tensor:  # noqa: D102
        cat = lambda s: torch.cat(s) if isinstance(s, list) else s  # noqa: E731
        preds, target, group = cat(self.preds), cat(self.target), cat(self.group)
        values = []
        for g in torch.unique(group).tolist():
            sel = group == g
            p, t = preds[sel], target[sel]
            if p.numel() < 2 or bool((p == p[0]).all()) or bool((t == t[0]).all()):
                continue
            values.append(spearman_corrcoef(p, t))
        if not values:
            return torch.tensor(float("nan"))
        return torch.stack(values).mean()

    def reset(self) -> None:  # noqa: D102
        super().reset()
        self._group_ids = {}


class PeerContactPrecisionAtL(ContactPrecisionAtL):
    """Contact precision at L/k counted as PEER / TorchDrug do (metric ``peer_contact_precision_at_l<k>``).

    Upstream: ``torchdrug/tasks/contact_prediction.py`` (``ContactPrediction.target`` / ``evaluate``) and
    ``torchdrug/metrics/metric.py`` (``variadic_top_precision``), PEER's ``contact_*.yaml`` (``prec@L5``, gap 6).
    Candidates of a protein of L residues are all *ordered* pairs (i, j) of a ``variadic_meshgrid`` - (i, j) and
    (j, i) both - with both residues labelled and ``|i - j| >= gap``; precision = true contacts among the
    ``L // k`` highest-scoring candidates / ``L // k``; a protein with fewer candidates than ``L // k`` scores 0
    (``precision[size < k] = 0``); the mean runs over every protein evaluated. Here a pair given in one order only
    also stands for its mirror with the same score and label (TorchDrug's pair features are symmetric, as
    :class:`~pa_geo.nn.heads.ContactHead`'s are); pairs given in both orders keep their own scores. A protein with
    ``L // k == 0`` is skipped (TorchDrug divides 0 by 0 there, which makes the whole mean NaN).

    ``update(preds [P], target [P], pair_index [2, P], batch [N], mask [P] | None)`` as
    :class:`ContactPrecisionAtL`; every protein of ``batch`` counts, also one without any candidate pair.
    """

    def update(self, preds: Tensor, target: Tensor, pair_index: Tensor, batch: Tensor,
               mask: Tensor | None = None) -> None:  # noqa: D102
        preds, target = preds.reshape(-1).float(), target.reshape(-1).bool()
        keep = torch.ones_like(target) if mask is None else mask.reshape(-1).bool()
        src, dst = pair_index[0].long(), pair_index[1].long()
        # given pairs first, then their mirrors; the first occurrence of each ordered pair wins
        src, dst = torch.cat([src, dst]), torch.cat([dst, src])
        preds, target, keep = preds.repeat(2), target.repeat(2), keep.repeat(2)
        num_nodes = batch.numel()
        key, inverse = torch.unique(src * num_nodes + dst, return_inverse=True)
        first = torch.full((key.numel(),), src.numel(), dtype=torch.long, device=src.device)
        first = first.scatter_reduce(0, inverse, torch.arange(src.numel(), device=src.device), reduce="amin")
        valid = keep[first] & ((src[first] - dst[first]).abs() >= self.min_separation)
        sel = first[valid]
        score, label, protein = preds[sel], target[sel], batch.long()[src[sel]]
        lengths = torch.bincount(batch.long())
        for b, length in enumerate(lengths.tolist()):
            n = length // self.k
            if n == 0:
                continue
            mine = protein == b
            if int(mine.sum()) >= n:
                top = torch.topk(score[mine], n).indices
                self.precision_sum += label[mine][top].double().sum() / n
            self.num_proteins += 1


class PerProteinAccuracy(Metric):
    """PEER's ``macro_acc``: accuracy over each protein's labelled residues, then the mean over proteins.

    Upstream: ``torchdrug/tasks/property_prediction.py`` ``NodePropertyPrediction.evaluate``, ``macro_acc``:
    ``variadic_mean(pred[labeled].argmax(-1) == target[labeled], size=labeled residues per protein).mean()`` over
    the whole evaluated split. A protein without any labelled residue is skipped (TorchDrug's 0 / 0 would make the
    mean NaN).

    ``update(preds [N, C] logits or probabilities, target [N] int64, batch [N] protein id of each row)``: rows are
    the labelled residues only (masked before); a protein's residues come in one update.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("accuracy_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_proteins", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, batch: Tensor) -> None:  # noqa: D102
        correct = (preds.argmax(-1) == target.reshape(-1)).double()
        _, protein = torch.unique(batch.reshape(-1), return_inverse=True)
        count = torch.bincount(protein).double()
        hits = torch.zeros_like(count).scatter_add(0, protein, correct)
        self.accuracy_sum += (hits / count).sum()
        self.num_proteins += count.numel()

    def compute(self) -> Tensor:  # noqa: D102
        if int(self.num_proteins) == 0:
            return torch.tensor(float("nan"))
        return (self.accuracy_sum / self.num_proteins).float()


def dssp_three_state(class_names: Sequence[str] | None, task: str = "") -> list[int]:
    """The 3-state class (index into ``SS3_CLASSES`` = H, E, C) of each DSSP class name: H, G, I -> H; E, B -> E;
    every other state (T, S, C, P, '-', ' ') -> C. Names that are not DSSP letters (or none) are a one-line
    :class:`ConfigError` naming ``task``."""
    names = [str(n) for n in class_names or []]
    bad = [n for n in names if len(n) != 1 or n not in DSSP_LETTERS]
    if not names or bad:
        got = f"class names {names}" if names else "no class names"
        raise ConfigError(f"task {task!r}: q3 maps DSSP states to {'/'.join(SS3_CLASSES)}, but the task has {got} "
                          f"(expected letters of {DSSP_LETTERS.strip()!r})")
    return [SS8_TO_SS3.get(n, len(SS3_CLASSES) - 1) for n in names]


class ThreeStateAccuracy(Metric):
    """Q3 of a DSSP classifier (metric ``q3``): accuracy after mapping the predicted class (argmax) and the true
    class to H / E / C (:func:`dssp_three_state` of the task's class names).

    ``mapping [C]``: the 3-state index of each class. ``update(preds [N, C] logits or probabilities, target [N]
    int64)``: rows are the labelled residues only (masked before).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, mapping: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.register_buffer("mapping", torch.as_tensor(list(mapping), dtype=torch.long), persistent=False)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:  # noqa: D102
        mapping = self.mapping.to(preds.device)
        if preds.dim() != 2 or preds.shape[1] != mapping.numel():
            raise ValueError(f"q3: preds must be [N, {mapping.numel()}], got {list(preds.shape)}")
        hits = mapping[preds.argmax(-1)] == mapping[target.reshape(-1).long()]
        self.correct += hits.sum()
        self.total += hits.numel()

    def compute(self) -> Tensor:  # noqa: D102
        if int(self.total) == 0:
            return torch.tensor(float("nan"))
        return self.correct.float() / self.total
