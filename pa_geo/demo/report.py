"""The demo's outputs: mean +- sd over seeds per model and metric (flags against the full adapter), ``demo.json``,
a bar chart with error bars and the validation curves (PNG)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pa_geo.demo.models import MODEL_DESCRIPTIONS
from pa_geo.errors import ConfigError
from pa_geo.tasks import get_task
from pa_geo.tasks.metric_factories import metric_higher_is_better

REFERENCE = "adapter"
FLAG_SD = 2.0
FLAG_RULE = (f"(+) / (-): mean better / worse than the full adapter's by more than {FLAG_SD:g} sd (sd = the larger "
             "of the two models' sample sds over seeds)")


def reported_metrics(spec: Any) -> list[str]:
    """What the table reports of a task: its primary metric, then its ``reported_metrics`` (e.g. demo_ss8's q3)."""
    return [spec.primary_metric, *(m for m in spec.reported_metrics if m != spec.primary_metric)]


def table_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(task, metric key)`` of the reported test metrics: each task's :func:`reported_metrics` on its first test
    split (primary task: ``test/<split>/<metric>``; auxiliary: ``test/<task>/<split>/<metric>``, those the rows
    logged)."""
    cols: list[tuple[str, str]] = []
    for row in rows:
        primary = get_task(row["task"])
        cols += [(row["task"], f"test/{primary.test_splits[0]}/{m}") for m in reported_metrics(primary)]
        aux_tasks = dict.fromkeys(k.split("/")[1] for k in row["test"] if k.count("/") == 3)  # test/<aux>/<split>/m
        for name in aux_tasks:
            aux = get_task(name)
            keys = [f"test/{name}/{aux.test_splits[0]}/{m}" for m in reported_metrics(aux)]
            cols += [(name, k) for k in keys if k in row["test"]]
    return list(dict.fromkeys(cols))


def metric_value(row: dict[str, Any], task: str, key: str) -> float | None:
    """``row``'s test value of column ``(task, key)``; a primary-task key (``test/<split>/<metric>``) names no task,
    so it belongs to the row only when ``task`` is the row's own task (auxiliary keys carry their task)."""
    if key not in row["test"] or (task != row["task"] and key.count("/") != 3):
        return None
    return float(row["test"][key])


def _higher_is_better(key: str) -> bool:
    return metric_higher_is_better(key.rsplit("/", 1)[1])


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (experiment, model), in first-seen order: per column ``{values, mean, sd, n, flag}`` (sample sd,
    0 for one seed; ``flag`` ``+`` / ``-`` / ``""`` against the experiment's adapter, :data:`FLAG_RULE`), the
    mean train time per run, trainable parameters and epochs."""
    cols = table_columns(rows)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["experiment"], r["model"]), []).append(r)
    out = []
    for (exp, model), runs in groups.items():
        stats = {}
        for task, key in cols:
            vals = [v for r in runs if (v := metric_value(r, task, key)) is not None]
            if vals:
                arr = np.asarray(vals, np.float64)
                stats[f"{task}|{key}"] = {"values": vals, "mean": float(arr.mean()), "n": len(vals),
                                          "sd": float(arr.std(ddof=1)) if len(vals) > 1 else 0.0, "flag": ""}
        out.append({"experiment": exp, "model": model, "seeds": [r["seed"] for r in runs], "metrics": stats,
                    "train_time_s": float(np.mean([r["train_time_s"] for r in runs])),
                    "trainable_params": runs[0]["trainable_params"], "epochs": runs[0]["epochs"]})
    for entry in out:
        ref = next((e for e in out if e["experiment"] == entry["experiment"] and e["model"] == REFERENCE), None)
        if ref is None or entry is ref:
            continue
        for col, s in entry["metrics"].items():
            r = ref["metrics"].get(col)
            if r is None or min(s["n"], r["n"]) < 2:
                continue
            diff = s["mean"] - r["mean"]
            if abs(diff) > FLAG_SD * max(s["sd"], r["sd"]):
                better = (diff > 0) == _higher_is_better(col.split("|", 1)[1])
                s["flag"] = "+" if better else "-"
    return out


def format_table(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """The results table: one line per (experiment, model) with every task's test metric as mean +- sd (flagged),
    trainable parameters and mean train seconds per run."""
    cols = table_columns(rows)
    n = max((len(e["seeds"]) for e in summary), default=0)
    head = ["experiment", "model"] + [f"{t} {k.rsplit('/', 1)[1]}" for t, k in cols] + \
        ["trainable", "epochs", "train s/run"]
    body = []
    for e in summary:
        cells = []
        for t, k in cols:
            s = e["metrics"].get(f"{t}|{k}")
            cells.append("" if s is None else f"{s['mean']:.4f} ± {s['sd']:.4f}" + (f" ({s['flag']})" if s["flag"]
                                                                                   else ""))
        body.append([e["experiment"], e["model"], *cells, f"{e['trainable_params']:,}", str(e["epochs"]),
                     f"{e['train_time_s']:.0f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    foot = f"test metrics, mean ± sd over {n} seed(s); {FLAG_RULE}"
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body), foot])


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a one-line error when the demo extra is not installed."""
    try:
        import matplotlib  # the optional demo extra
    except ImportError:
        raise ConfigError("the demo's plots need matplotlib: pip install 'pa_geo[demo]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation primary metric per epoch, one panel per experiment, one colour per model, one line per seed."""
    plt = _pyplot()
    exps = list(dict.fromkeys(r["experiment"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = {m: plt.get_cmap("tab10" if len(models) <= 10 else "tab20")(i % 20) for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, len(exps), figsize=(6 * len(exps), 4), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        metric = ""
        for r in (r for r in rows if r["experiment"] == exp):
            metric = f"val/{get_task(r['task']).primary_metric}"
            if not r.get("metrics_csv") or not Path(r["metrics_csv"]).exists():  # trees: no curve
                continue
            df = pd.read_csv(r["metrics_csv"])
            if metric in df and "epoch" in df:
                curve = df[["epoch", metric]].dropna()
                ax.plot(curve["epoch"] + 1, curve[metric], marker="o", color=colours[r["model"]], alpha=0.8,
                        label=r["model"] if r["seed"] == min(x["seed"] for x in rows if x["model"] == r["model"])
                        else None)
        ax.set_title(f"{exp}: validation {metric.split('/')[-1]}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_bars(summary: list[dict[str, Any]], rows: list[dict[str, Any]], path: Path) -> None:
    """Test metric per model, mean with sd error bars and every seed as a dot, one panel per (task, metric)."""
    plt = _pyplot()
    cols = table_columns(rows)
    fig, axes = plt.subplots(1, len(cols), figsize=(max(4.5, 0.55 * len(summary) + 2) * len(cols) / 1.3, 4.6),
                             squeeze=False)
    for ax, (task, key) in zip(axes[0], cols):
        sel = [(e["model"], e["metrics"][f"{task}|{key}"]) for e in summary if f"{task}|{key}" in e["metrics"]]
        x = np.arange(len(sel))
        ref = [s["mean"] for m, s in sel if m == REFERENCE]
        colours = ["tab:orange" if m == REFERENCE else "tab:blue" for m, _ in sel]
        ax.bar(x, [s["mean"] for _, s in sel], yerr=[s["sd"] for _, s in sel], capsize=4, color=colours, alpha=0.8)
        for xi, (_, s) in zip(x, sel):
            ax.plot([xi] * len(s["values"]), s["values"], "k.", markersize=4)
            if s["flag"]:
                ax.annotate(s["flag"], (xi, s["mean"] + s["sd"]), ha="center", va="bottom", fontsize=12)
        if ref:
            ax.axhline(ref[0], color="tab:orange", lw=0.8, ls="--")
        ax.set_xticks(x, [m for m, _ in sel], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{task}: test {key.rsplit('/', 1)[1]} (mean ± sd)")
        vals = [v for _, s in sel for v in s["values"]]
        if vals:
            lo, hi = min(vals), max(vals)
            pad = max(0.02, 0.15 * (hi - lo))
            ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + 2 * pad)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def write_report(rows: list[dict[str, Any]], embed_rows: list[dict[str, Any]], out: Path, total_s: float,
                 extra: dict[str, Any] | None = None) -> str:
    """Print the table, write ``out/demo.json`` (atomically) and the two PNGs; returns the table text."""
    summary = summarize(rows)
    table = format_table(summary, rows)
    print("\n" + table + "\n", flush=True)
    used = dict.fromkeys(r["model"] for r in rows)
    print(f"[demo] total {total_s:.0f} s; models: " + "; ".join(f"{k} = {MODEL_DESCRIPTIONS[k]}" for k in used),
          flush=True)
    payload = {"results": rows, "summary": summary, "embeddings": embed_rows, "total_time_s": round(total_s, 1),
               "table": table, "flag_rule": FLAG_RULE, **(extra or {})}
    _atomic_write(out / "demo.json", json.dumps(payload, indent=2).encode())
    plot_curves(rows, out / "demo_curves.png")
    plot_bars(summary, rows, out / "demo_bars.png")
    print(f"[demo] wrote {out / 'demo.json'}, {out / 'demo_curves.png'}, {out / 'demo_bars.png'}", flush=True)
    return table
