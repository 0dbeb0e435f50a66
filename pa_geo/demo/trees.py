"""The classical baseline of the structure experiment: hand-made CA geometry + gradient-boosted trees.

Per residue, :func:`pa_geo.graphs.geometry.ca_geometry_table` (CA-CA distances inside a +-4 window, virtual bond
angles and dihedrals, nearest non-local CA distances, neighbour counts; phi / psi / omega where the backbone has
them) goes into scikit-learn's ``HistGradientBoostingClassifier`` (8-state DSSP) and ``HistGradientBoostingRegressor``
(relative solvent accessibility), ``max_iter`` iterations (default :data:`MAX_ITER`), otherwise scikit-learn's
defaults (early stopping on a 10% part of the training rows, drawn by ``random_state`` = the seed). No sequence, no
embeddings. It reads the same example stores as every trained model of the experiment (same splits, same CA
traces), through the data module the demo's CLI builds from the same configs.

The demo's ``ca_geometry_trees`` row runs it as a program::

    python -m pa_geo.demo.trees --config configs/multitask/demo_ss8_rsa.yaml [--data.* overrides] \\
        --seed 0 --learning-rate 0.05 --out runs/structure/ca_geometry_trees/seed0

which fits one model per task of the config (the primary task and its auxiliary tasks, node-level classification
or regression) at that learning rate, scores the validation split (``best_val``: the primary metric) and the test
split with the tasks' own metrics (:func:`pa_geo.tasks.build_metrics`: the keys of a trained row, e.g.
``test/test/q3``, ``test/demo_rsa/test/pearson``) and writes ``<out>/row.json``. The learning rate is chosen on
the validation split by ``python -m pa_geo.demo.sweep --lr-grid`` (:data:`LEARNING_RATES`), never on test.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from pa_geo.demo.models import TREES_LR
from pa_geo.demo.tasks import SS8_CLASSES
from pa_geo.demo.training import RunSpec, Runner, build_cli, lr_arg, save_row
from pa_geo.errors import ConfigError, PaGeoError
from pa_geo.graphs.geometry import ca_geometry_table
from pa_geo.tasks.custom_metrics import dssp_three_state
from pa_geo.tasks.metrics import build_metrics
from pa_geo.train.notices import LIGHTNING_LOGGERS, silence_known_notices

LEARNING_RATES: tuple[float, ...] = (0.025, 0.05, 0.1)
MAX_ITER = 300
SS3_OF_SS8 = np.array(dssp_three_state(SS8_CLASSES))  # H G I -> H; E B -> E; T S C -> C (class order HGIEBTSC)
PROGRAM = "python -m pa_geo.demo.trees"


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

    def outputs(self, X: np.ndarray, num_outputs: int) -> np.ndarray:
        """``X [M, F]`` -> what a trained head would give the metrics: ``[M, C]`` class probabilities (zero for a
        class the training rows lack) for a classifier, ``[M]`` values for a regressor."""
        if not hasattr(self.model, "predict_proba"):
            return self.predict(X)
        probs = np.zeros((len(X), num_outputs), np.float32)
        probs[:, self.model.classes_.astype(np.int64)] = self.model.predict_proba(X[:, self.columns])
        return probs

    @property
    def leaves(self) -> int:
        """Leaves of every tree (the fitted values: what the row reports as its trainable parameters)."""
        return int(sum(p.get_n_leaf_nodes() for it in self.model._predictors for p in it))


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


def split_arrays(datamodule: Any, task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X [M, F], y [M])`` of ``task``'s ``split`` store in ``datamodule`` (built on first use)."""
    store = datamodule.store(task, split)
    return stored_arrays(store.get(i) for i in range(len(store)))


def experiment_arrays(datamodule: Any, task: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (X [M, F], y [M])}`` of ``task``'s train / valid / test stores in ``datamodule`` (a
    :class:`~pa_geo.train.datamodule.PaGeoDataModule`; stores are built on first use)."""
    spec = datamodule.specs[task]
    splits = {"train": spec.train_split, "valid": spec.valid_split, "test": spec.test_splits[0]}
    return {name: split_arrays(datamodule, task, split) for name, split in splits.items()}


def _kind(spec: Any) -> str:
    """``classification`` / ``regression`` of a node-level task the trees can fit; else a one-line ConfigError."""
    if spec.level != "node" or spec.label_type not in ("multiclass", "regression"):
        raise ConfigError(f"ca_geometry_trees fits per-residue classification or regression, not task "
                          f"{spec.name!r} ({spec.level} level, {spec.label_type})")
    if spec.label_type == "regression" and spec.num_outputs != 1:
        raise ConfigError(f"ca_geometry_trees fits one regression target, task {spec.name!r} has "
                          f"{spec.num_outputs}")
    return "classification" if spec.label_type == "multiclass" else "regression"


def _scores(spec: Any, prefix: str, fit: TreesFit, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Every metric of ``spec`` on ``(X, y)``, keyed as a trained model logs it (``prefix`` + name)."""
    with warnings.catch_warnings():  # Spearman's buffer notice: the split is scored in one update
        warnings.simplefilter("ignore", UserWarning)
        metrics = build_metrics(spec, prefix)
    target = torch.as_tensor(y, dtype=torch.long if spec.label_type == "multiclass" else torch.float32)
    metrics.update(torch.as_tensor(fit.outputs(X, spec.num_outputs)), target)
    return {k: float(v) for k, v in metrics.compute().items()}


def _prefix(datamodule: Any, task: str, stage: str, split: str) -> str:
    """``val/`` / ``test/<split>/``, the task's name inserted for an auxiliary task (as :class:`PaGeoModule`)."""
    parts = [stage] + ([] if task == datamodule.task else [task]) + ([split] if stage == "test" else [])
    return "/".join(parts) + "/"


def fit_trees(datamodule: Any, seed: int, learning_rate: float, max_iter: int = MAX_ITER,
              test: bool = True) -> dict[str, Any]:
    """Fit one model per task of ``datamodule`` (primary + auxiliary) at ``learning_rate``; score validation and,
    with ``test``, the first test split. Returns the row's measured part: ``val`` / ``test`` (metric key -> value),
    ``best_val`` (the primary task's validation primary metric), ``train_time_s`` / ``train_cpu_s`` (features of
    the training and validation rows + fits + validation scoring), ``trainable_params`` (leaves of every tree),
    ``n_iter`` (iterations each model ran: early stopping may end it before ``max_iter``)."""
    for task, spec in datamodule.specs.items():  # stores first (built once per experiment, not part of the fit)
        for split in [spec.train_split, spec.valid_split, *(spec.test_splits[:1] if test else [])]:
            datamodule.store(task, split)
    start, cpu = time.perf_counter(), time.process_time()
    fits, val = {}, {}
    for task, spec in datamodule.specs.items():
        kind = _kind(spec)
        train = split_arrays(datamodule, task, spec.train_split)
        valid = split_arrays(datamodule, task, spec.valid_split)
        fits[task] = fit_on_validation(kind, train, valid, seed, (float(learning_rate),), max_iter)
        val.update(_scores(spec, _prefix(datamodule, task, "val", spec.valid_split), fits[task], *valid))
    train_time, train_cpu = time.perf_counter() - start, time.process_time() - cpu
    tested = {}
    for task, spec in datamodule.specs.items() if test else ():
        split = spec.test_splits[0]
        tested.update(_scores(spec, _prefix(datamodule, task, "test", split), fits[task],
                              *split_arrays(datamodule, task, split)))
    primary = datamodule.specs[datamodule.task]
    return {"val": val, "test": tested, "best_val": val[f"val/{primary.primary_metric}"],
            "monitor": f"val/{primary.primary_metric}", "train_time_s": round(train_time, 1),
            "train_cpu_s": round(train_cpu, 1), "trainable_params": sum(f.leaves for f in fits.values()),
            "n_iter": {task: int(f.model.n_iter_) for task, f in fits.items()}}


class TreesRunner(Runner):
    """The ``ca_geometry_trees`` row: ``python -m pa_geo.demo.trees`` on the experiment's ``--config`` /
    ``--data.*`` arguments with ``--seed``, ``--learning-rate``, ``--max-iter`` (:data:`MAX_ITER`: the row's
    ``epochs``) and ``--out`` (the run folder); the demo's epochs do not apply."""

    program = PROGRAM
    lr_grid = LEARNING_RATES

    def row_args(self, model_args: list[str], lr: float, epochs: int, run_dir: Path, seed: int,
                 progress: bool) -> list[str]:  # noqa: D102
        return [*model_args, "--seed", str(seed), "--learning-rate", lr_arg(lr), "--max-iter", str(MAX_ITER),
                "--out", str(run_dir)]

    def run(self, spec: RunSpec) -> dict[str, Any]:  # noqa: D102
        return trees_run(spec)


TREES = TreesRunner()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="random_state of the trees (early-stopping rows)")
    parser.add_argument("--learning-rate", type=float, default=TREES_LR["structure"])
    parser.add_argument("--max-iter", type=int, default=MAX_ITER, help="boosting iterations (the row's epochs)")
    parser.add_argument("--out", required=True, help="run folder: row.json goes here")
    parser.add_argument("--no-test", action="store_true", help="never read the test split (model selection)")
    parser.add_argument("--threads", type=int, default=0, help="OpenMP / torch threads (0: leave as they are)")
    return parser



def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(the trees' own options, the ``--config`` / ``--data.*`` arguments of the data module). Any other argument
    is a one-line ConfigError (the trees read data settings only)."""
    opts, rest = _parser().parse_known_args(argv)
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not (arg == "--config" or arg.startswith(("--config=", "--data."))):
            raise ConfigError(f"{PROGRAM}: unexpected argument {arg!r} (give --config and --data.* settings only)")
        i += 1 if "=" in arg else 2
    return opts, rest


def trees_run(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` (a :class:`TreesRunner` row: ``spec.args`` as :func:`parse_args` reads them); the results row,
    keys as a trained row's (:func:`pa_geo.demo.training.train_run`), ``epochs`` = ``max_iter``."""
    opts, data_args = parse_args(spec.args)
    threads = spec.threads or opts.threads
    if threads:
        torch.set_num_threads(threads)
    for name in LIGHTNING_LOGGERS:  # the CLI's devices / seed lines would bury the demo's own progress lines
        logging.getLogger(name).setLevel(logging.WARNING)
    silence_known_notices()
    cli = build_cli([*data_args, "--trainer.default_root_dir", opts.out, "--trainer.logger", "false"])
    dm = cli.datamodule
    with threadpool_limits(limits=threads or None):
        measured = fit_trees(dm, opts.seed, opts.learning_rate, opts.max_iter,
                             test=spec.test and not opts.no_test)
    return {"experiment": spec.experiment, "task": dm.task, "model": spec.model, "seed": spec.seed,
            "learning_rate": float(opts.learning_rate), "threads": threads or torch.get_num_threads(),
            "epochs": opts.max_iter, "best_epoch": None, "residues_per_s": None, "metrics_csv": None,
            "command": spec.command, **measured, **spec.meta}


def main(argv: list[str] | None = None) -> int:
    """``python -m pa_geo.demo.trees``: fit, score, write ``<out>/row.json``; a one-line error exits 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        opts, _ = parse_args(argv)
        spec = RunSpec("", "ca_geometry_trees", opts.seed, argv, opts.out, test=not opts.no_test, runner=TREES)
        row = trees_run(spec)
        row["experiment"] = row["task"]
    except PaGeoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    save_row(spec, row)
    print(json.dumps({k: row[k] for k in ("best_val", "train_time_s", "trainable_params", "test")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
