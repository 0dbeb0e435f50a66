"""One run of the demo (a row's arguments -> fit, test, a results row), in this process or in a worker process
(:func:`run_all`: runs in parallel, each with its share of the CPU threads).

How a row runs is its :class:`Runner`: :class:`FitRunner` (``pa-geo fit`` arguments -> Lightning fit, test of the
best checkpoint) here, the gradient-boosted trees of :mod:`pa_geo.demo.trees` there; :mod:`pa_geo.demo.runners`
names them for the demo's model table."""
from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from pa_geo.nn.params import parameter_report
from pa_geo.train.cli import build_cli as build_pa_geo_cli
from pa_geo.train.notices import LIGHTNING_LOGGERS, silence_known_notices

ROW_FILE = "row.json"


def lr_arg(lr: float) -> str:
    """A learning rate as a command-line value (``0.003``, ``1e-05``)."""
    return f"{float(lr):g}"


def trainer_args(epochs: int, run_dir: Path, seed: int, progress: bool) -> list[str]:
    """Per-run ``pa-geo fit`` overrides: epochs, run folder, seed (initialisation and batch order)."""
    return ["--trainer.max_epochs", str(epochs), "--trainer.devices", "1", "--trainer.default_root_dir", str(run_dir),
            "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
            "--trainer.log_every_n_steps", "10", "--trainer.enable_progress_bar", json.dumps(progress),
            "--seed_everything", str(seed), "--data.seed", str(seed)]


class Runner:
    """How a demo row runs: ``program`` (what its printed command starts with), ``lr_grid`` (the learning rates
    :mod:`pa_geo.demo.sweep` tries by default), :meth:`row_args` (its arguments after the experiment's shared
    ``--config`` / ``--data.*`` ones) and :meth:`run` (:class:`RunSpec` -> results row, in a worker process too: a
    runner is pickled with its spec, so it holds no state)."""

    program: str = ""
    lr_grid: tuple[float, ...] = ()

    def row_args(self, model_args: list[str], lr: float, epochs: int, run_dir: Path, seed: int,
                 progress: bool) -> list[str]:
        """The row's own arguments: ``model_args`` (its ablation config), learning rate, budget, folder, seed."""
        raise NotImplementedError

    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Run ``spec``; the results row (keys as :func:`train_run`'s)."""
        raise NotImplementedError


class FitRunner(Runner):
    """A trained model: ``pa-geo fit`` with ``--model.lr`` and :func:`trainer_args`, then :func:`train_run`."""

    program = "pa-geo fit"
    lr_grid = (1e-3, 3e-3, 1e-2)

    def row_args(self, model_args: list[str], lr: float, epochs: int, run_dir: Path, seed: int,
                 progress: bool) -> list[str]:  # noqa: D102
        return [*model_args, "--model.lr", lr_arg(lr), *trainer_args(epochs, run_dir, seed, progress)]

    def run(self, spec: RunSpec) -> dict[str, Any]:  # noqa: D102
        return train_run(spec)


FIT = FitRunner()


@dataclass
class RunSpec:
    """One (experiment, model, seed) run: ``args`` are the arguments of ``runner.program`` that build it."""

    experiment: str
    model: str
    seed: int
    args: list[str]
    run_dir: str
    threads: int = 0  # torch threads in the run's process (0: leave as is)
    meta: dict[str, Any] = field(default_factory=dict)  # copied into the row (e.g. sweep settings)
    test: bool = True  # False: never touch the test split (model selection, pa_geo.demo.sweep)
    runner: Runner = FIT

    @property
    def command(self) -> str:
        """The equivalent command line (``pa-geo fit ...``, ``python -m pa_geo.demo.trees ...``)."""
        return f"{self.runner.program} {shlex.join(self.args)}"


def build_cli(args: list[str]) -> Any:
    """The CLI object (model, data module, trainer) of ``pa-geo fit <args>``, without running anything."""
    return build_pa_geo_cli(args, run=False)


def train_run(spec: RunSpec) -> dict[str, Any]:
    """Fit (best checkpoint by the validation metric), test that checkpoint; returns the results row: ``test``
    (every logged test metric), ``best_val`` (the monitored validation value), ``train_time_s`` (fit only, wall) and
    ``train_cpu_s`` (its process CPU time: on a loaded machine, what the fit would take alone on its threads),
    ``trainable_params``, ``residues_per_s`` (primary-task training residues x epochs / fit time),
    ``learning_rate`` (the model's)."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    for name in LIGHTNING_LOGGERS:  # a worker's devices / seed lines would bury the demo's own progress lines
        logging.getLogger(name).setLevel(logging.WARNING)
    silence_known_notices()
    cli = build_cli(spec.args)
    start, cpu_start = time.perf_counter(), time.process_time()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    train_time, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ckpt = cli.trainer.checkpoint_callback
    tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False) \
        if spec.test else []
    dm = cli.datamodule
    residues = int(dm.store(dm.task, dm.specs[dm.task].train_split).sizes.sum())
    log_dir = Path(cli.trainer.loggers[0].log_dir) if cli.trainer.loggers else Path(spec.run_dir)
    return {"experiment": spec.experiment, "task": dm.task, "model": spec.model, "seed": spec.seed,
            "learning_rate": float(cli.model.lr),
            "trainable_params": parameter_report(cli.model).trainable, "train_time_s": round(train_time, 1),
            "train_cpu_s": round(train_cpu, 1), "threads": torch.get_num_threads(),
            "epochs": cli.trainer.current_epoch, "best_epoch": ckpt.best_epoch,
            "best_val": None if ckpt.best_model_score is None else float(ckpt.best_model_score),
            "monitor": ckpt.monitor, "residues_per_s": round(residues * cli.trainer.current_epoch / train_time, 1),
            "test": {k: float(v) for d in tested for k, v in d.items()},
            "metrics_csv": str(log_dir / "metrics.csv"), "command": spec.command,
            **spec.meta}


def execute(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` with its runner (what a worker process calls)."""
    return spec.runner.run(spec)


def _describe(row: dict[str, Any], prefix: str = "[demo]") -> str:
    tests = ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in row["test"].items() if k.count("/") >= 2)
    lr = f", lr {row['learning_rate']:g}" if row.get("learning_rate") is not None else ""
    return (f"{prefix} {row['experiment']} / {row['model']} / seed {row['seed']}: {row['train_time_s']:.0f} s "
            f"({row['train_cpu_s']:.0f} s CPU), {row['epochs']} epochs{lr}, best val {row['best_val']:.4f}"
            + (f"; {tests}" if tests else ""))


def finished_row(spec: RunSpec) -> dict[str, Any] | None:
    """The row a finished run wrote to ``<run_dir>/row.json``, if it ran exactly this command; else None."""
    path = Path(spec.run_dir) / ROW_FILE
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = row.get("command") == spec.command and row.get("meta", {}) == spec.meta
    return row if same and (row.get("test") or not spec.test) else None


def save_row(spec: RunSpec, row: dict[str, Any]) -> None:
    """Write the row next to the run, atomically (a killed demo keeps every finished run)."""
    path = Path(spec.run_dir) / ROW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ROW_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**row, "meta": spec.meta}, indent=1))
    os.replace(tmp, path)


def run_all(specs: list[RunSpec], jobs: int, on_row: Callable[[dict[str, Any]], None] | None = None,
            initializer: Callable[[], None] | None = None, prefix: str = "[demo]") -> list[dict[str, Any]]:
    """Every run, ``jobs`` at a time (``jobs`` > 1: spawned worker processes, each starting with ``initializer``,
    e.g. registering tasks a spawned process lacks); rows in the order of ``specs``; progress lines start with
    ``prefix``. A run whose folder holds the row of the same command (a finished run of an earlier, maybe
    interrupted, demo; or the default rows when ``--all-models`` follows ``pa-geo demo``) is reused, not rerun."""
    rows: list[dict[str, Any] | None] = [None] * len(specs)

    def done(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        save_row(specs[i], row)
        print(_describe(row, prefix), flush=True)
        if on_row is not None:
            on_row(row)

    todo = []
    for i, spec in enumerate(specs):
        row = finished_row(spec)
        if row is None:
            todo.append(i)
        else:
            rows[i] = row
            print(f"{prefix} reusing the finished run in {spec.run_dir}", flush=True)
    if len(todo) < len(specs):
        print(f"{prefix} {len(specs) - len(todo)} runs reused, {len(todo)} to train", flush=True)
    specs_todo = {i: specs[i] for i in todo}

    if jobs <= 1 or len(todo) <= 1:
        for i, spec in specs_todo.items():
            print(f"{prefix} {spec.command}", flush=True)
            done(i, execute(spec))
        return [r for r in rows if r is not None]
    ctx = multiprocessing.get_context("spawn")  # fork after torch started its thread pools is not safe
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=initializer) as pool:
        futures = {}
        for i, spec in specs_todo.items():
            print(f"{prefix} {spec.command}", flush=True)
            futures[pool.submit(execute, spec)] = i
        for fut in concurrent.futures.as_completed(futures):
            done(futures[fut], fut.result())
    return [r for r in rows if r is not None]


def spec_dict(spec: RunSpec) -> dict[str, Any]:
    """The spec as plain values (for the JSON; the runner by its program)."""
    return {**{k: v for k, v in asdict(spec).items() if k != "runner"}, "runner": spec.runner.program}
