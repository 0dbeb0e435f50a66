"""Custom metrics against hand-computed examples; torchmetrics-backed ones against scipy / numpy on random data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from torchmetrics import regression as R

from pa_geo.errors import ConfigError
from pa_geo.tasks import available_tasks, build_metrics, get_task
from pa_geo.tasks.custom_metrics import (ContactPrecisionAtL, PeerContactPrecisionAtL, PerTargetSpearman,
                                         ProteinCentricFmax, ThreeStateAccuracy, dssp_three_state)
from pa_geo.tasks.spec import TaskSpec
from pa_geo.tasks.metric_factories import metric_higher_is_better


def _contact_batch():
    # protein 0: nodes 0..9 (L=10, top 2); protein 1: nodes 10..24 (L=15, top 3)
    batch = torch.tensor([0] * 10 + [1] * 15)
    pairs = [((0, 6), 0.9, 1), ((1, 8), 0.8, 0), ((2, 9), 0.7, 1), ((0, 3), 0.95, 1), ((6, 0), 0.1, 1),
             ((10, 20), 0.5, 1), ((11, 22), 0.4, 1), ((12, 24), 0.3, 0), ((13, 23), 0.2, 1), ((10, 24), 0.99, 0)]
    pair_index = torch.tensor([p for p, _, _ in pairs]).T
    preds = torch.tensor([s for _, s, _ in pairs])
    target = torch.tensor([t for _, _, t in pairs])
    mask = torch.ones(len(pairs), dtype=torch.bool)
    mask[-1] = False  # the highest-scoring pair of protein 1 is unlabelled
    return preds, target, pair_index, batch, mask


def test_contact_precision_hand_example() -> None:
    preds, target, pair_index, batch, mask = _contact_batch()
    m = ContactPrecisionAtL(k=5, min_separation=6)
    m.update(preds, target, pair_index, batch, mask)
    # protein 0: top2 = (0,6) T, (1,8) F -> 1/2 ((0,3) too close; (6,0) duplicates (0,6));
    # protein 1: top3 = T, T, F -> 2/3 (masked (10,24) excluded)
    assert m.compute().item() == pytest.approx((1 / 2 + 2 / 3) / 2)
    m.update(preds[:5], target[:5], pair_index[:, :5], batch[:10])  # one more protein like protein 0
    assert m.compute().item() == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    m.reset()
    assert torch.isnan(m.compute())


def test_contact_precision_l_over_1_and_separation() -> None:
    batch = torch.zeros(12, dtype=torch.long)
    pair_index = torch.tensor([[0, 0, 1], [11, 5, 7]])
    m = ContactPrecisionAtL(k=1, min_separation=6)
    m.update(torch.tensor([0.1, 0.9, 0.5]), torch.tensor([1, 1, 0]), pair_index, batch)
    # L=12 -> up to 12 pairs but only 2 candidates with |i-j| >= 6: (0,11) T and (1,7) F
    assert m.compute().item() == pytest.approx(0.5)


def test_fmax_hand_example() -> None:
    m = ProteinCentricFmax()
    m.update(torch.tensor([[0.9, 0.6, 0.2]]), torch.tensor([[1, 0, 1]]))
    m.update(torch.tensor([[0.3, 0.8, 0.1]]), torch.tensor([[0, 1, 0]]))
    # best threshold in (0.6, 0.8]: precision (1 + 1) / 2 = 1, recall (1/2 + 1) / 2 = 3/4 -> F = 6/7
    assert m.compute().item() == pytest.approx(6 / 7, abs=1e-6)


def test_per_target_spearman_hand_example() -> None:
    m = PerTargetSpearman()
    m.update(torch.tensor([1.0, 2.0, 3.0, 1.0]), torch.tensor([1.0, 2.0, 3.0, 5.0]), ["T1", "T1", "T1", "T3"])
    m.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 3.0, 1.0]), ["T2", "T2", "T2"])
    # T1: rho 1; T2: ranks (1,2,3) vs (2,3,1) -> 1 - 6*6/(3*8) = -0.5; T3 has one decoy -> skipped
    assert m.compute().item() == pytest.approx(0.25, abs=1e-5)


def test_regression_metrics_match_scipy() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200, generator=g)
    p = 0.6 * y + torch.randn(200, generator=g)
    m = build_metrics(get_task("fluorescence"), prefix="test/")
    for chunk in range(4):  # accumulated over batches, [B, 1] head output
        sl = slice(50 * chunk, 50 * (chunk + 1))
        m.update(p[sl, None], y[sl])
    out = {k: v.item() for k, v in m.compute().items()}
    yn, pn = y.numpy().astype(np.float64), p.numpy().astype(np.float64)
    assert out["test/spearman"] == pytest.approx(stats.spearmanr(pn, yn).statistic, abs=1e-5)
    assert out["test/pearson"] == pytest.approx(stats.pearsonr(pn, yn).statistic, abs=1e-5)
    assert out["test/mae"] == pytest.approx(np.abs(pn - yn).mean(), abs=1e-5)
    assert out["test/rmse"] == pytest.approx(np.sqrt(((pn - yn) ** 2).mean()), abs=1e-5)
    m.reset()
    m.update(p[:10, None], y[:10])
    assert m.compute()["test/mae"].item() == pytest.approx(np.abs(pn[:10] - yn[:10]).mean(), abs=1e-5)


def test_binary_metrics_from_logits_match_mann_whitney() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (300,), generator=g)
    logits = y * 0.8 + torch.randn(300, generator=g)
    m = build_metrics(get_task("human_ppi"))
    m.update(logits[:, None], y)
    out = m.compute()
    pos, neg = logits[y == 1].numpy(), logits[y == 0].numpy()
    auc = stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
    assert out["auroc"].item() == pytest.approx(auc, abs=1e-5)
    assert out["accuracy"].item() == pytest.approx(((logits > 0).long() == y).float().mean().item())


def test_node_multiclass_accuracy_respects_mask() -> None:
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0], [0, 5.0, 0]])
    target = torch.tensor([0, 1, 1, 2, 1])
    mask = torch.tensor([True, True, True, False, True])
    m = build_metrics(get_task("secondary_structure"), prefix="val/")
    m.update(logits, target, mask=mask, batch=torch.zeros(5, dtype=torch.long))
    out = m.compute()
    assert out["val/accuracy"].item() == pytest.approx(3 / 4)  # row 3 is unlabelled
    assert out["val/accuracy_macro"].item() == pytest.approx((1 + 2 / 3 + 0) / 3)  # class 2 never labelled
    with pytest.raises(ValueError, match="macro_acc: update needs batch"):
        m.update(logits, target, mask=mask)


def test_peer_macro_acc_hand_example() -> None:
    """PEER's macro_acc (TorchDrug NodePropertyPrediction.evaluate): accuracy per protein, then the mean."""
    right, wrong = [5.0, 0, 0], [0, 5.0, 0]  # class 0 predicted; targets are all class 0
    # protein 0: 2 residues, 1 right; protein 1: 4 residues, the 2 labelled ones right (2 unlabelled, predicted
    # wrong); protein 2: 5 residues, 1 right; protein 3: 1 residue, unlabelled (skipped by macro_acc)
    logits = torch.tensor([right, wrong] + [right, wrong, right, wrong] + [right] + [wrong] * 4 + [wrong])
    mask = torch.tensor([1, 1] + [1, 0, 1, 0] + [1] * 5 + [0]).bool()
    batch = torch.tensor([0] * 2 + [1] * 4 + [2] * 5 + [3])
    target = torch.zeros(12, dtype=torch.long)
    m = build_metrics(get_task("secondary_structure"), prefix="test/")
    m.update(logits[:6], target[:6], mask=mask[:6], batch=batch[:6])  # two batches, protein ids restart
    m.update(logits[6:], target[6:], mask=mask[6:], batch=batch[6:] - 2)
    out = m.compute()
    assert out["test/macro_acc"].item() == pytest.approx((1 / 2 + 2 / 2 + 1 / 5) / 3)
    assert out["test/accuracy"].item() == pytest.approx(4 / 9)  # micro: labelled residues pooled
    with pytest.raises(ConfigError, match="macro_acc .* needs a node task"):
        build_metrics(get_task("fold"), names=["macro_acc"])


def _peer_contact_batch():
    """A: L=10 (top 2), C: L=20 (top 4) with 1 valid pair, D: L=3 (L//5 = 0), E: L=10 without pairs, F: L=8."""
    sizes = {"A": 10, "C": 20, "D": 3, "E": 10, "F": 8}
    start = dict(zip(sizes, np.cumsum([0] + list(sizes.values()))[:-1].tolist()))
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes.values())])
    pairs = [("A", 0, 6, 0.9, 0), ("A", 1, 8, 0.8, 0), ("A", 2, 9, 0.7, 1), ("A", 0, 3, 0.95, 1),
             ("A", 7, 1, 0.85, 1), ("A", 1, 7, 0.1, 1),  # (1, 7) given in both orders, different scores
             ("C", 0, 15, 0.6, 1), ("C", 0, 2, 0.99, 1), ("F", 0, 7, 0.3, 1)]
    pair_index = torch.tensor([[start[p] + i, start[p] + j] for p, i, j, _, _ in pairs]).T
    preds = torch.tensor([s for *_, s, _ in pairs])
    target = torch.tensor([t for *_, t in pairs])
    return preds, target, pair_index, batch


def test_peer_contact_precision_hand_example() -> None:
    preds, target, pair_index, batch = _peer_contact_batch()
    peer = PeerContactPrecisionAtL(k=5, min_separation=6)
    peer.update(preds, target, pair_index, batch)
    # A: ordered candidates (0,6) (6,0) .9 F, (7,1) .85 T, (1,8) (8,1) .8 F, ... -> top 2 = both orders of (0,6): 0
    # C: 2 ordered candidates < 4 -> 0; D: L // 5 = 0, skipped; E: no candidate < 2 -> 0; F: top 1 of
    # (0,7) (7,0) .3 T -> 1
    assert peer.compute().item() == pytest.approx((0 + 0 + 0 + 1) / 4)
    unordered = ContactPrecisionAtL(k=5, min_separation=6)
    unordered.update(preds, target, pair_index, batch)
    # A: (0,6) .9 F, (1,7) .85 T -> 1/2; C: its one pair -> 1; E: skipped; F: 1
    assert unordered.compute().item() == pytest.approx((1 / 2 + 1 + 1) / 3)
    m = build_metrics(get_task("contact"), prefix="val/")
    m.update(preds, target, pair_index=pair_index, batch=batch)
    out = m.compute()
    assert out["val/peer_contact_precision_at_l5"].item() == pytest.approx(1 / 4)
    assert out["val/contact_precision_at_l5"].item() == pytest.approx(5 / 6)


def test_peer_contact_precision_matches_torchdrug_counting_on_random_maps() -> None:
    """Against a dense re-count as TorchDrug does it: every ordered (i, j) of the L x L meshgrid with |i-j| >= 6,
    top L // k by score, precision 0 when fewer candidates than L // k."""
    g = np.random.default_rng(5)
    lengths = [9, 13, 30, 41]
    batch, pairs, scores, labels, expected = [], [], [], [], []
    offset = 0
    for b, L in enumerate(lengths):
        s = g.random((L, L))
        s = s + s.T  # a symmetric head
        y = g.random((L, L)) < 0.3
        y = y | y.T
        i, j = np.nonzero(np.abs(np.subtract.outer(np.arange(L), np.arange(L))) >= 6)
        n = L // 2
        top = np.argsort(-s[i, j], kind="stable")[:n]
        expected.append(0.0 if len(i) < n else y[i, j][top].sum() / n)
        iu, ju = np.triu_indices(L, 6)  # the head scores each unordered pair once
        pairs.append(np.stack([iu, ju]) + offset)
        scores.append(s[iu, ju])
        labels.append(y[iu, ju])
        batch += [b] * L
        offset += L
    m = PeerContactPrecisionAtL(k=2, min_separation=6)
    m.update(torch.tensor(np.concatenate(scores)), torch.tensor(np.concatenate(labels)),
             torch.tensor(np.concatenate(pairs, axis=1)), torch.tensor(batch))
    assert m.compute().item() == pytest.approx(np.mean(expected), abs=1e-6)


def test_one_lower_is_better_rule() -> None:
    """Each metric's own torchmetrics ``higher_is_better`` decides; every registered spec follows it."""
    assert metric_higher_is_better("rmse") is False and metric_higher_is_better("mae") is False
    assert metric_higher_is_better("rmse") == R.MeanSquaredError.higher_is_better
    assert metric_higher_is_better("spearman") and metric_higher_is_better("peer_contact_precision_at_l5")
    assert metric_higher_is_better("macro_acc") and metric_higher_is_better("per_target_spearman")
    for name in available_tasks():
        spec = get_task(name)
        assert spec.higher_is_better == metric_higher_is_better(spec.primary_metric), name
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        metric_higher_is_better("bleu")


def test_contact_task_metrics_and_psr_groups() -> None:
    preds, target, pair_index, batch, mask = _contact_batch()
    m = build_metrics(get_task("contact"))
    m.update(preds, target, mask=mask, pair_index=pair_index, batch=batch)
    out = m.compute()
    assert out["contact_precision_at_l5"].item() == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="pair_index"):
        m.update(preds, target)
    psr = build_metrics(get_task("psr"))
    psr.update(torch.tensor([[1.0], [2.0], [3.0], [3.0], [2.0]]), torch.tensor([1.0, 2.0, 3.0, 1.0, 2.0]),
               group=["a", "a", "a", "b", "b"])
    res = psr.compute()
    assert res["per_target_spearman"].item() == pytest.approx(0.0, abs=1e-5)  # a: +1, b: -1
    assert res["spearman"].item() == pytest.approx(stats.spearmanr([1, 2, 3, 3, 2], [1, 2, 3, 1, 2]).statistic,
                                                   abs=1e-5)


def test_unknown_or_mismatched_metric() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        build_metrics(get_task("fold"), names=["bleu"])
    with pytest.raises(ConfigError, match="does not apply to regression"):
        build_metrics(get_task("stability"), names=["auroc"])
    with pytest.raises(ConfigError, match="residue_pair"):
        build_metrics(get_task("fold"), names=["contact_precision_at_l5"])


def _ss8_spec(names: list[str] | None, name: str = "x") -> TaskSpec:
    options = {} if names is None else {"class_names": names}
    return TaskSpec(name, "structure", "node", "multiclass", 8 if names is None else len(names),
                    ["accuracy", "q3"], "accuracy", ["train", "valid", "test"], options=options)


def test_q3_against_a_hand_computation() -> None:
    """Q3 maps predicted and true 8-state classes by the task's class names: H G I -> H, E B -> E, T S C -> C."""
    names = list("HGIEBTSC")
    assert dssp_three_state(names) == [0, 0, 0, 1, 1, 2, 2, 2]
    true = "HGIEBTSCHE"
    pred = "GHITESCBHC"  # Q8 by hand: only I (3rd) and H (9th) match -> 2 of 10
    # Q3 by hand (true / predicted state): H/H, H/H, H/H, E/C, E/E, C/C, C/C, C/E, H/H, E/C -> 7 of 10
    logits = torch.full((10, 8), -5.0)
    logits[torch.arange(10), torch.tensor([names.index(c) for c in pred])] = 5.0
    target = torch.tensor([names.index(c) for c in true])
    metrics = build_metrics(_ss8_spec(names), "val/")
    mask = torch.ones(11, dtype=torch.bool)
    mask[-1] = False  # an unlabelled 11th residue is not scored
    metrics.update(torch.cat([logits, torch.zeros(1, 8)]), torch.cat([target, torch.tensor([0])]), mask=mask)
    out = metrics.compute()
    assert out["val/accuracy"].item() == pytest.approx(2 / 10) and out["val/q3"].item() == pytest.approx(7 / 10)
    assert metric_higher_is_better("q3") and ThreeStateAccuracy.higher_is_better
    other = ThreeStateAccuracy(dssp_three_state(["C", "E", "H"]))  # any order: the names decide
    other.update(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), torch.tensor([2, 1]))
    assert other.compute().item() == pytest.approx(0.5)
    empty = ThreeStateAccuracy(dssp_three_state(names))
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(empty.compute())


def test_q3_needs_dssp_class_names() -> None:
    for names, why in [(None, "no class names"), (["0", "1", "2"], r"class names \['0', '1', '2'\]"),
                       (["H", "E", "Coil"], "'Coil'")]:
        with pytest.raises(ConfigError, match=f"^task 'x': q3 maps DSSP states to H/E/C, but the task has .*{why}") \
                as err:
            build_metrics(_ss8_spec(names))
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not apply to regression"):
        build_metrics(get_task("demo_rsa"), names=["q3"])
    ss8 = get_task("demo_ss8")
    assert ss8.metrics == ["accuracy", "accuracy_macro", "q3"] and ss8.reported_metrics == ["q3"]
    assert list(build_metrics(ss8, "test/test/").keys()) == ["test/test/accuracy", "test/test/accuracy_macro",
                                                             "test/test/q3"]
