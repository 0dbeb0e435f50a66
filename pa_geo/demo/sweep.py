"""Sweeps of the demo's rows scored on the VALIDATION split only (the test split is never evaluated): the best
validation value of each run's primary metric (structure: 8-state accuracy; solubility: accuracy), mean +- sd over
seeds. Two modes:

``python -m pa_geo.demo.sweep --lr-grid [LR ...]`` - every row of ``--models`` (default: the demo's rows) on every
experiment of ``--experiments`` (default: structure and solubility) at every learning rate of its grid: the given
values for the trained rows (default 1e-3 3e-3 1e-2), ``--trees-lr-grid`` for the gradient-boosted trees (default
0.025 0.05 0.1), with the demo's epochs and ``--seeds`` (default 3). Prints model x lr -> mean +- sd and the chosen
learning rate per (experiment, model) (the best mean), writes ``<out>/sweep_lr.json`` (``chosen``: what
``DemoModel.lr`` in :mod:`pa_geo.demo.models` should hold).

``python -m pa_geo.demo.sweep [--settings NAME ...] [--settings-file settings.json]`` - one run per setting: a list
of ``pa-geo fit`` overrides on top of each row of ``--models`` (default: the adapter) on ``--experiments``
(default: structure), 4 epochs and 1 seed unless given. The settings are :data:`SETTINGS` (one change of the
adapter each) or those of a JSON file ``{name: [override, ...]}`` (recipe sweeps: batch size, schedule, epochs, ...);
``--settings`` picks some of them by name. Writes ``<out>/sweep.json``.

``--extra='--data.batch_nodes 2000'`` adds overrides to every trained row's run in either mode (settings apply to
trained rows only). ``--quick`` runs the demo's set-up check budget (1 epoch, 1 seed, the first records). A setting that wins here is a
default only if it wins on validation.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from pa_geo.demo.models import ALL_MODELS, DEMO_MODELS, EXPERIMENTS
from pa_geo.demo.run import DEFAULTS, QUICK, add_arguments, default_jobs, plan_runs, prepare
from pa_geo.demo.runners import runner_of
from pa_geo.demo.training import FIT, RunSpec, run_all
from pa_geo.errors import ConfigError
from pa_geo.tasks import get_task
from pa_geo.train.notices import lightning_warnings_only

A = "--model.encoder.init_args.adapter.init_args."
P = "--model.encoder.init_args.predictor.init_args."
SETTINGS: dict[str, list[str]] = {
    "defaults": [],
    "lr 3e-4": ["--model.lr", "3e-4"],
    "lr 3e-3": ["--model.lr", "3e-3"],
    "lr 1e-2": ["--model.lr", "1e-2"],
    "1 block": [A + "n_blocks", "1"],
    "3 blocks": [A + "n_blocks", "3"],
    "d_model 128": [A + "d_model", "128", P + "in_dim", "128", P + "hidden_dim", "128"],
    "graph attention": [A + "attention", "graph", A + "edge_dim", "21"],
    "pool ratio 0.8": [P + "pool_kwargs", '{"ratio": 0.8}'],
    "no pooling (1 scale)": [P + "pool", "none", P + "num_scales", "1"],
    "readout attention": [P + "readout", "attention"],
    "merge sum": [P + "merge", "sum"],
}
SETTINGS_DEFAULTS = {"epochs": 4, "seeds": 1}


def read_settings(path: str) -> dict[str, list[str]]:
    """``{name: [override, ...]}`` from a JSON file; anything else is a one-line ConfigError."""
    try:
        settings = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--settings-file {path}: cannot read it as JSON ({err})") from None
    ok = isinstance(settings, dict) and settings and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v) for k, v in settings.items())
    if not ok:
        raise ConfigError(f"--settings-file {path}: expected a non-empty object {{name: [override strings]}}")
    return settings


def _stats(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _write(out: Path, name: str, payload: dict[str, Any]) -> None:
    tmp = out / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out / name)
    print(f"[sweep] wrote {out / name}", flush=True)


def _fill(args: argparse.Namespace, defaults: dict[str, Any]) -> None:
    for key, value in (QUICK if args.quick else {**DEFAULTS, **defaults}).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def lr_grids(args: argparse.Namespace, models: list[str]) -> dict[str, tuple[float, ...]]:
    """model -> its learning rates: ``--lr-grid`` values for trained rows, ``--trees-lr-grid`` for the trees, else
    the runner's own grid."""
    out = {}
    for model in models:
        runner = runner_of(model)
        given = args.lr_grid if runner is FIT else args.trees_lr_grid
        out[model] = tuple(given) if given else runner.lr_grid
    return out


def plan_lr(args: argparse.Namespace, clis: dict[str, Any], models: list[str], jobs: int) -> list[RunSpec]:
    """Every (experiment, model, lr, seed) run, validation only, in ``runs/<experiment>/sweep_lr/<model>/lr<x>/``."""
    grids, specs = lr_grids(args, models), []
    for name, cli in clis.items():
        for model in models:
            extra = shlex.split(args.extra) if runner_of(model) is FIT else []
            for lr in grids[model]:
                root = Path(args.out) / "runs" / name / "sweep_lr"
                for spec in plan_runs(args, name, cli, [model], jobs, lr=lr, extra=extra,
                                      folder=lambda m, s, r=root, x=lr: r / m / f"lr{x:g}" / f"seed{s}"):
                    spec.test, spec.meta = False, {"sweep": "lr", "lr": lr}
                    specs.append(spec)
    return specs


def summarize_lr(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]], str]:
    """(one entry per (experiment, model, lr): mean / sd / values of the best validation metric and train time;
    the chosen lr per experiment and model, by the primary metric's direction; the table)."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["experiment"], r["model"], r["lr"]), []).append(r)
    summary, chosen = [], {}
    for (exp, model, lr), runs in groups.items():
        mean, sd = _stats([r["best_val"] for r in runs])
        summary.append({"experiment": exp, "model": model, "lr": lr, "mean": mean, "sd": sd, "monitor":
                        runs[0]["monitor"], "values": [r["best_val"] for r in runs], "seeds": [r["seed"] for r in runs],
                        "train_time_s": float(np.mean([r["train_time_s"] for r in runs]))})
    for exp, model in dict.fromkeys((e["experiment"], e["model"]) for e in summary):
        mine = [e for e in summary if (e["experiment"], e["model"]) == (exp, model)]
        higher = get_task(next(r["task"] for r in rows if r["experiment"] == exp)).higher_is_better
        best = max(mine, key=lambda e: e["mean"] if higher else -e["mean"])
        chosen.setdefault(exp, {})[model] = best["lr"]
    head = f"{'experiment':<12}{'model':<28}{'lr':>8}  {'best val (mean ± sd)':>22}{'seeds':>7}{'train s/run':>13}"
    lines = [head, "-" * len(head)]
    for e in summary:
        mark = "  <- chosen" if chosen[e["experiment"]][e["model"]] == e["lr"] else ""
        lines.append(f"{e['experiment']:<12}{e['model']:<28}{e['lr']:>8g}  {e['mean']:>13.4f} ± {e['sd']:.4f}"
                     f"{len(e['values']):>7}{e['train_time_s']:>13.0f}{mark}")
    lines.append("validation split only (" + ", ".join(sorted({e["monitor"] for e in summary})) + ")")
    return summary, chosen, "\n".join(lines)


def plan_settings(args: argparse.Namespace, clis: dict[str, Any], models: list[str], jobs: int,
                  settings: dict[str, list[str]]) -> list[RunSpec]:
    """One run per (experiment, setting, model, seed) in ``runs/<experiment>/sweep/<setting>/<model>/``."""
    specs = []
    for name, cli in clis.items():
        for setting, overrides in settings.items():
            extra = overrides + shlex.split(args.extra)
            root = Path(args.out) / "runs" / name / "sweep" / setting.replace(" ", "_")
            for spec in plan_runs(args, name, cli, models, jobs, extra=extra,
                                  folder=lambda m, s, r=root: r / m / f"seed{s}"):
                spec.test, spec.meta = False, {"setting": setting, "overrides": extra}
                specs.append(spec)
    return specs


def summarize_settings(rows: list[dict[str, Any]], settings: dict[str, list[str]]) -> tuple[list[dict], str]:
    """(one entry per (experiment, model, setting), the table)."""
    summary = []
    head = f"{'experiment':<12}{'model':<28}{'setting':<24}{'best val (mean ± sd)':>22}{'seeds':>7}{'train s/run':>13}"
    lines = [head, "-" * len(head)]
    for exp, model in dict.fromkeys((r["experiment"], r["model"]) for r in rows):
        for name in settings:
            runs = [r for r in rows if (r["experiment"], r["model"], r["setting"]) == (exp, model, name)]
            if not runs:
                continue
            mean, sd = _stats([r["best_val"] for r in runs])
            t = float(np.mean([r["train_time_s"] for r in runs]))
            summary.append({"experiment": exp, "model": model, "setting": name, "mean": mean, "sd": sd,
                            "values": [r["best_val"] for r in runs], "train_time_s": t, "monitor": runs[0]["monitor"],
                            "overrides": runs[0]["overrides"]})
            lines.append(f"{exp:<12}{model:<28}{name:<24}{mean:>13.4f} ± {sd:.4f}{len(runs):>7}{t:>13.0f}")
    lines.append("validation split only (" + ", ".join(sorted({e["monitor"] for e in summary})) + ")")
    return summary, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pa_geo.demo.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(models=None, experiments=None)
    parser.add_argument("--lr-grid", nargs="*", type=float, default=None,
                        help="learning-rate mode; the trained rows' grid (default: 1e-3 3e-3 1e-2)")
    parser.add_argument("--trees-lr-grid", nargs="+", type=float, default=None,
                        help="learning-rate mode: the trees' grid (default: 0.025 0.05 0.1)")
    parser.add_argument("--settings", nargs="+", default=None, help=f"settings mode: names of settings to run "
                        f"(default: all of them; built in: {', '.join(SETTINGS)})")
    parser.add_argument("--settings-file", default=None, help="settings mode: JSON {name: [override, ...]} "
                                                              "instead of the built-in settings")
    parser.add_argument("--extra", default="", help="overrides added to every run, one string: "
                                                    "--extra='--data.batch_nodes 2000'")
    args = parser.parse_args(argv)
    lr_mode = args.lr_grid is not None
    if lr_mode and (args.settings or args.settings_file):
        parser.error("--lr-grid runs the demo's rows at each learning rate; it takes no --settings / --settings-file")
    if lr_mode:
        _fill(args, {})
        args.models = list(ALL_MODELS) if args.all_models else list(args.models or DEMO_MODELS)
        args.experiments = args.experiments or list(EXPERIMENTS)
    else:
        _fill(args, SETTINGS_DEFAULTS)
        args.models = list(ALL_MODELS) if args.all_models else list(args.models or ["adapter"])
        args.experiments = args.experiments or ["structure"]
        try:
            available = read_settings(args.settings_file) if args.settings_file else SETTINGS
        except ConfigError as err:
            parser.error(str(err))
        unknown = [s for s in args.settings or [] if s not in available]
        if unknown:
            parser.error(f"unknown setting(s) {unknown}; known: {', '.join(available)}")
        settings = {s: available[s] for s in (args.settings or available)}
        untrained = [m for m in args.models if runner_of(m) is not FIT]
        if untrained:
            parser.error(f"settings are pa-geo fit overrides: {', '.join(untrained)} is not a trained row")
    jobs = args.jobs or default_jobs()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out)
    start = time.perf_counter()
    with lightning_warnings_only():  # building the experiments' CLIs: their devices / seed lines are not the sweep's
        clis = {name: prepare(args, name)[0] for name in args.experiments}
    specs = plan_lr(args, clis, args.models, jobs) if lr_mode else \
        plan_settings(args, clis, args.models, jobs, settings)
    rows = run_all(specs, jobs)
    common = {"runs": rows, "epochs": args.epochs, "solubility_epochs": args.solubility_epochs, "seeds": args.seeds,
              "jobs": jobs, "extra": args.extra, "split": "valid"}
    if lr_mode:
        summary, chosen, table = summarize_lr(rows)
        print("\n" + table + "\n\nchosen learning rates (best validation mean): " + json.dumps(chosen), flush=True)
        _write(out, "sweep_lr.json", {"summary": summary, "chosen": chosen, "table": table,
                                      "grids": {m: list(g) for m, g in lr_grids(args, args.models).items()}, **common,
                                      "total_time_s": round(time.perf_counter() - start, 1)})
    else:
        summary, table = summarize_settings(rows, settings)
        print("\n" + table, flush=True)
        _write(out, "sweep.json", {"summary": summary, "table": table, **common,
                                   "total_time_s": round(time.perf_counter() - start, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
