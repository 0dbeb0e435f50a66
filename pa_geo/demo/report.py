"""The demo's outputs: one results table on stdout, ``demo.json``, learning curves and a bar chart (PNG)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pa_geo.demo.models import MODEL_DESCRIPTIONS
from pa_geo.errors import ConfigError


def table_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(task, metric key)`` of the reported test metrics: each task's primary metric on its first test split."""
    from pa_geo.tasks import get_task

    cols: list[tuple[str, str]] = []
    for row in rows:
        primary = get_task(row["task"])
        cols.append((row["task"], f"test/{primary.test_splits[0]}/{primary.primary_metric}"))
        for key in row["test"]:
            parts = key.split("/")  # test/<aux task>/<split>/<metric>
            if len(parts) == 4:
                aux = get_task(parts[1])
                if parts[3] == aux.primary_metric:
                    cols.append((parts[1], key))
    return list(dict.fromkeys(cols))


def metric_value(row: dict[str, Any], task: str, key: str) -> float | None:
    """``row``'s test value of column ``(task, key)``; a primary-task key (``test/<split>/<metric>``) names no task,
    so it belongs to the row only when ``task`` is the row's own task (auxiliary keys carry their task)."""
    if key not in row["test"] or (task != row["task"] and key.count("/") != 3):
        return None
    return float(row["test"][key])


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results table: one line per (experiment, model) with every task's test metric, params and time."""
    cols = table_columns(rows)
    head = ["experiment", "model"] + [f"{t} {k.rsplit('/', 1)[1]}" for t, k in cols] + ["trainable", "train s"]
    body = []
    for r in rows:
        vals = [f"{v:.4f}" if (v := metric_value(r, t, k)) is not None else "" for t, k in cols]
        body.append([r["experiment"], r["model"], *vals, f"{r['trainable_params']:,}", f"{r['train_time_s']:.0f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)])


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a one-line error when the demo extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the demo's plots need matplotlib: pip install 'pa_geo[demo]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation primary metric per epoch, one panel per experiment, one line per model."""
    import pandas as pd

    plt = _pyplot()

    from pa_geo.tasks import get_task

    exps = list(dict.fromkeys(r["experiment"] for r in rows))
    fig, axes = plt.subplots(1, len(exps), figsize=(6 * len(exps), 4), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        for r in (r for r in rows if r["experiment"] == exp):
            metric = f"val/{get_task(r['task']).primary_metric}"
            if not Path(r["metrics_csv"]).exists():
                continue
            df = pd.read_csv(r["metrics_csv"])
            if metric in df and "epoch" in df:
                curve = df[["epoch", metric]].dropna()
                ax.plot(curve["epoch"] + 1, curve[metric], marker="o", label=r["model"])
        ax.set_title(f"{exp}: validation {metric.split('/')[-1]}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(rows: list[dict[str, Any]], path: Path) -> None:
    """Test metric per model, one panel per reported (task, metric)."""
    plt = _pyplot()
    cols = table_columns(rows)
    fig, axes = plt.subplots(1, len(cols), figsize=(4.5 * len(cols), 4), squeeze=False)
    for ax, (task, key) in zip(axes[0], cols):
        sel = [(r["model"], v) for r in rows if (v := metric_value(r, task, key)) is not None]
        ax.bar([m for m, _ in sel], [v for _, v in sel], color="tab:blue")
        ax.set_title(f"{task}: test {key.rsplit('/', 1)[1]}")
        ax.tick_params(axis="x", rotation=45)
        lo = min(v for _, v in sel) if sel else 0.0
        ax.set_ylim(max(0.0, lo - 0.1), None)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[dict[str, Any]], embed_rows: list[dict[str, Any]], out: Path, total_s: float) -> str:
    """Print the table, write ``out/demo.json`` (atomically) and the two PNGs; returns the table text."""
    table = format_table(rows)
    print("\n" + table + "\n", flush=True)
    print(f"[demo] total {total_s:.0f} s; models: " + "; ".join(f"{k} = {v}" for k, v in MODEL_DESCRIPTIONS.items()
                                                                 if any(r["model"] == k for r in rows)))
    payload = {"results": rows, "embeddings": embed_rows, "total_time_s": round(total_s, 1), "table": table}
    _atomic_write(out / "demo.json", json.dumps(payload, indent=2).encode())
    plot_curves(rows, out / "demo_curves.png")
    plot_bars(rows, out / "demo_bars.png")
    print(f"[demo] wrote {out / 'demo.json'}, {out / 'demo_curves.png'}, {out / 'demo_bars.png'}", flush=True)
    return table
