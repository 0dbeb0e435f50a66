"""A small sweep of the full adapter on the demo's structure experiment, scored on the VALIDATION split only (the
test split is never evaluated): ``python -m pa_geo.demo.sweep [--settings ...] [--seeds N]``.

Each setting is a list of ``pa-geo fit`` overrides on top of the demo's adapter row (``multitask/demo_ss8_rsa``,
the demo's epochs and data); the table gives the best validation value of the primary metric (8-state accuracy)
per setting, mean +- sd over seeds, and the train time. Written to ``<out>/sweep.json``. Used to choose the
adapter's demo defaults (README, "The demo"); a setting that wins here is a default only if it wins on validation.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path

import numpy as np

from pa_geo.demo.run import add_arguments, default_jobs, plan_runs, prepare
from pa_geo.demo.training import run_all

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pa_geo.demo.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--extra", default="", help="overrides added to every setting, one string: "
                                                    "--extra='--model.lr 3e-3'")
    args = parser.parse_args(argv)
    args.experiments, args.models = ["structure"], ["adapter"]
    for key, value in {"epochs": 4, "seeds": 1, "max_records": None, "solubility_max_records": None}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    jobs = args.jobs or default_jobs()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out)
    start = time.perf_counter()
    cli, _ = prepare(args, "structure")
    specs = []
    for name in args.settings:
        for spec in plan_runs(args, "structure", cli, ["adapter"], jobs):
            spec.args += SETTINGS[name] + shlex.split(args.extra)
            spec.run_dir = str(Path(spec.run_dir).parent.parent / "sweep" / name.replace(" ", "_") / f"seed{spec.seed}")
            i = spec.args.index("--trainer.default_root_dir")
            spec.args[i + 1] = spec.run_dir
            spec.test, spec.meta = False, {"setting": name, "overrides": SETTINGS[name] + shlex.split(args.extra)}
            specs.append(spec)
    rows = run_all(specs, jobs)
    lines = [f"{'setting':<24}{'val accuracy (mean ± sd)':>26}{'seeds':>7}{'train s/run':>13}",
             "-" * 70]
    summary = []
    for name in args.settings:
        runs = [r for r in rows if r["setting"] == name]
        vals = np.asarray([r["best_val"] for r in runs], np.float64)
        sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        t = float(np.mean([r["train_time_s"] for r in runs]))
        summary.append({"setting": name, "mean": float(vals.mean()), "sd": sd, "values": vals.tolist(),
                        "train_time_s": t, "overrides": SETTINGS[name]})
        lines.append(f"{name:<24}{vals.mean():>17.4f} ± {sd:.4f}{len(vals):>7}{t:>13.0f}")
    table = "\n".join(lines)
    print("\n" + table, flush=True)
    payload = {"summary": summary, "runs": rows, "table": table, "epochs": args.epochs, "seeds": args.seeds,
               "jobs": jobs, "total_time_s": round(time.perf_counter() - start, 1), "split": "valid"}
    tmp = out / ".sweep.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out / "sweep.json")
    print(f"[sweep] wrote {out / 'sweep.json'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
