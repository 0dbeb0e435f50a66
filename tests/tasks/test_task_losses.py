"""Losses by label type (with masks and target standardisation) and streaming target statistics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein
from pa_geo.tasks import build_loss, get_task, regression_target_stats
from pa_geo.tasks.losses import TargetStats
from pa_geo.tasks.spec import TaskRecord


def test_regression_standardised_mse_and_denormalize() -> None:
    recs = [TaskRecord(str(i), [Protein.from_sequence(str(i), "AC")], v) for i, v in enumerate([1.0, 3.0, 5.0])]
    mean, std = regression_target_stats(recs)
    assert (mean, std) == pytest.approx((3.0, np.std([1.0, 3.0, 5.0])))
    loss = build_loss(get_task("stability"), (mean, std))
    preds = torch.tensor([[0.0], [1.0]], requires_grad=True)
    target = torch.tensor([3.0, 5.0])
    value = loss(preds, target)
    expected = F.mse_loss(preds.detach().reshape(-1), (target - mean) / std)
    assert value.item() == pytest.approx(expected.item())
    value.backward()
    assert preds.grad is not None
    assert loss.denormalize(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([mean, mean + std])
    # stored in the spec options instead
    spec = get_task("stability")
    spec.options["target_stats"] = (mean, std)
    assert build_loss(spec)(preds, target).item() == pytest.approx(expected.item())
    # no statistics: plain MSE, denormalize is the identity
    plain = build_loss(get_task("stability"))
    assert plain(preds, target).item() == pytest.approx(F.mse_loss(preds.detach().reshape(-1), target).item())


def test_node_regression_stats_use_mask() -> None:
    p = Protein.from_sequence("a", "ACDE")
    rec = TaskRecord("a", [p], np.array([1.0, 100.0, 3.0, np.nan], np.float32),
                     label_mask=np.array([True, False, True, True]))
    assert regression_target_stats([rec]) == pytest.approx((2.0, 1.0))
    with pytest.raises(ConfigError, match="no finite labels"):
        regression_target_stats([])


def test_binary_bce_with_logits_and_mask() -> None:
    loss = build_loss(get_task("contact"))
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    target = torch.tensor([1.0, 0.0, 1.0, 0.0])
    mask = torch.tensor([True, True, True, False])
    expected = F.binary_cross_entropy_with_logits(logits[:3], target[:3])
    assert loss(logits, target, mask).item() == pytest.approx(expected.item())
    assert loss.denormalize(logits) is logits


def test_multiclass_cross_entropy_ignores_masked_nodes() -> None:
    loss = build_loss(get_task("secondary_structure"))
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 2, 1, 1, 0])
    mask = torch.tensor([True, False, True, True, False])
    expected = F.cross_entropy(logits[mask], target[mask])
    assert loss(logits, target, mask).item() == pytest.approx(expected.item())
    none = loss(logits.requires_grad_(), target, torch.zeros(5, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad


def test_multilabel_bce() -> None:
    from pa_geo.tasks.losses import TaskLoss

    loss = TaskLoss("bce")
    logits = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.5, -0.5]])
    target = torch.tensor([[1, 0, 1], [0, 1, 0]])
    expected = F.binary_cross_entropy_with_logits(logits, target.float())
    assert loss(logits, target).item() == pytest.approx(expected.item())
    with pytest.raises(ConfigError, match="unknown loss"):
        TaskLoss("hinge")


def test_target_stats_stream_one_record_at_a_time() -> None:
    rng = np.random.default_rng(0)
    recs = [TaskRecord(f"r{i}", [], rng.normal(3.0, 2.0, size=5).astype(np.float32),
                       label_mask=rng.random(5) > 0.3) for i in range(40)]
    stats = TargetStats()
    for r in recs:
        stats.update(r)
    values = np.concatenate([r.label[r.label_mask] for r in recs]).astype(np.float64)
    assert stats.result() == pytest.approx((values.mean(), values.std()), rel=1e-9)
    assert stats.count == values.size
    with pytest.raises(ConfigError, match="no finite labels"):
        TargetStats().result()
