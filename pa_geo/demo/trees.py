"""The classical baseline of the structure experiment: hand-made CA geometry + gradient-boosted trees.

Per residue, :func:`pa_geo.graphs.geometry.ca_geometry_table` (CA-CA distances inside a +-4 window, virtual bond
angles and dihedrals, nearest non-local CA distances, neighbour counts; phi / psi / omega where the backbone has
them) goes into scikit-learn's ``HistGradientBoostingClassifier`` (8-state DSSP) and ``HistGradientBoostingRegressor``
(relative solvent accessibility). No sequence, no embeddings. The learning rate is chosen on the validation split
from :data:`LEARNING_RATES` (the same budget the trained models get); the test split is scored once.

It reads the same example stores as every trained model of the experiment (same splits, same CA traces).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from pa_geo.graphs.geometry import ca_geometry_table

LEARNING_RATES: tuple[float, ...] = (0.05, 0.1, 0.2)
MAX_ITER = 300
SS3_OF_SS8 = np.array([0, 0, 0, 1, 1, 2, 2, 2])  # H G I -> H; E B -> E; T S C -> C (class order HGIEBTSC)


def residue_table(data: Any) -> np.ndarray:
    """``[N, F]`` float32 geometry table of one stored example (a residue graph with ``backbone``, ``pos``,
    ``pos_mask``, ``chain_index``), NaN where undefined."""
    table, _ = ca_geometry_table(data.backbone.numpy(), data.pos.numpy(), data.pos_mask.numpy(),
                                 data.chain_index.numpy())
    return table


def stored_arrays(examples: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every labelled residue of ``examples`` (stored ``ResidueData``): ``X [M, F]``, ``y [M]``."""
    xs, ys = [], []
    for data in examples:
        mask = data.node_y_mask.numpy().astype(bool)
        xs.append(residue_table(data)[mask])
        y = data.node_y.numpy()
        ys.append((y.reshape(len(mask), -1)[:, 0] if y.ndim > 1 else y)[mask])
    return np.concatenate(xs), np.concatenate(ys)


@dataclass
class TreesFit:
    """A fitted model with the learning rate chosen on validation and every validation score of the grid.
    ``columns`` [F] bool: the table columns it reads (columns undefined on every training row, e.g. phi / psi on
    CA traces, are left out)."""

    model: Any
    learning_rate: float
    columns: np.ndarray
    val_scores: dict[float, float] = field(default_factory=dict)
    fit_s: float = 0.0

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``X [M, F]`` (all table columns) -> ``[M]`` classes or values."""
        return self.model.predict(X[:, self.columns])


def _score(kind: str, pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred == y).mean()) if kind == "classification" else float(pearsonr(pred, y)[0])


def fit_on_validation(kind: str, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                      seed: int, learning_rates: tuple[float, ...] = LEARNING_RATES,
                      max_iter: int = MAX_ITER) -> TreesFit:
    """Fit one model per learning rate on ``train`` (``X [M, F]``, ``y [M]``), keep the best on ``valid``
    (accuracy for ``kind="classification"``, Pearson r for ``"regression"``). ``fit_s``: wall time of all fits."""
    cls = HistGradientBoostingClassifier if kind == "classification" else HistGradientBoostingRegressor
    columns = ~np.isnan(train[0]).all(0)
    best, start = None, time.perf_counter()
    scores = {}
    for lr in learning_rates:
        model = cls(max_iter=max_iter, learning_rate=lr, random_state=seed).fit(train[0][:, columns], train[1])
        scores[lr] = _score(kind, model.predict(valid[0][:, columns]), valid[1])
        if best is None or scores[lr] > scores[best[0]]:
            best = (lr, model)
    return TreesFit(best[1], best[0], columns, scores, time.perf_counter() - start)


def classification_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """8-state ``accuracy`` (Q8), ``accuracy_macro`` (mean per-class recall over the classes present) and ``q3``
    (both mapped to H / E / C by :data:`SS3_OF_SS8`); ``pred``, ``y`` ``[M]`` class indices in HGIEBTSC order."""
    present = np.unique(y)
    recall = [float((pred[y == c] == c).mean()) for c in present]
    return {"accuracy": float((pred == y).mean()), "accuracy_macro": float(np.mean(recall)),
            "q3": float((SS3_OF_SS8[pred] == SS3_OF_SS8[y]).mean())}


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``pearson``, ``spearman``, ``mae``, ``rmse`` of ``pred`` against ``y`` (both ``[M]``)."""
    return {"pearson": float(pearsonr(pred, y)[0]), "spearman": float(spearmanr(pred, y)[0]),
            "mae": float(np.abs(pred - y).mean()), "rmse": float(np.sqrt(((pred - y) ** 2).mean()))}


def experiment_arrays(datamodule: Any, task: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (X [M, F], y [M])}`` of ``task``'s train / valid / test stores in ``datamodule`` (a
    :class:`~pa_geo.train.datamodule.PaGeoDataModule`; stores are built on first use)."""
    spec = datamodule.specs[task]
    splits = {"train": spec.train_split, "valid": spec.valid_split, "test": spec.test_splits[0]}
    out = {}
    for name, split in splits.items():
        store = datamodule.store(task, split)
        out[name] = stored_arrays(store.get(i) for i in range(len(store)))
    return out
