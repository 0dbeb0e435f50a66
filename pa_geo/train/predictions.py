"""``predict`` output: one CSV row per protein (graph tasks), per residue (node tasks) or per residue pair."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from pa_geo.tasks.spec import TaskSpec

FILENAME = "predictions.csv"


def _value_columns(spec: TaskSpec, out: torch.Tensor) -> dict[str, list]:
    """Columns for rows of head outputs ``out`` [R, C] (already de-standardised for regression)."""
    out = out.detach().float().cpu().reshape(out.shape[0], -1)
    cols: dict[str, list] = {}
    if spec.label_type == "multiclass":
        prob = out.softmax(-1)
        cols["prediction"] = prob.argmax(-1).tolist()
        for c in range(prob.shape[1]):
            cols[f"prob_{c}"] = prob[:, c].tolist()
    elif spec.label_type == "binary":
        prob = out[:, 0].sigmoid()
        cols["prediction"] = (prob >= 0.5).long().tolist()
        cols["probability"] = prob.tolist()
    elif spec.label_type == "multilabel":
        prob = out.sigmoid()
        for t in range(prob.shape[1]):
            cols[f"prob_{t}"] = prob[:, t].tolist()
    elif out.shape[1] == 1:
        cols["prediction"] = out[:, 0].tolist()
    else:
        for t in range(out.shape[1]):
            cols[f"prediction_{t}"] = out[:, t].tolist()
    return cols


def prediction_rows(spec: TaskSpec, ids: Sequence[str], output: torch.Tensor, node_batch: torch.Tensor | None = None,
                    residue_number: torch.Tensor | None = None, pairs: torch.Tensor | None = None,
                    pair_batch: torch.Tensor | None = None) -> pd.DataFrame:
    """A frame of predictions of one batch.

    Graph level: ``output`` [B, C] -> columns ``id`` + values. Node level: ``output`` [N, C] with ``node_batch``
    [N] (graph of each node) and ``residue_number`` [N] -> ``id, residue_index, residue_number`` + values.
    Residue pairs: ``output`` [P] logits of pairs ``pairs`` [2, P] (node indices within their protein) in graphs
    ``pair_batch`` [P] -> ``id, i, j, probability``.
    """
    if spec.level == "residue_pair":
        assert pairs is not None and pair_batch is not None
        prob = output.detach().float().cpu().reshape(-1).sigmoid()
        return pd.DataFrame({"id": [ids[b] for b in pair_batch.cpu().tolist()], "i": pairs[0].cpu().tolist(),
                             "j": pairs[1].cpu().tolist(), "probability": prob.tolist()})
    values = _value_columns(spec, output)
    if spec.level == "graph":
        return pd.DataFrame({"id": list(ids), **values})
    assert node_batch is not None
    nb = node_batch.cpu()
    counts = torch.bincount(nb, minlength=len(ids))
    starts = torch.cumsum(counts, 0) - counts
    index = torch.arange(nb.numel()) - starts[nb]
    frame: dict[str, list] = {"id": [ids[b] for b in nb.tolist()], "residue_index": index.tolist()}
    if residue_number is not None:
        frame["residue_number"] = residue_number.cpu().tolist()
    return pd.DataFrame({**frame, **values})


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PredictionCSVWriter(BasePredictionWriter):
    """Write ``<output_dir>/predictions.csv`` at the end of ``predict``.

    ``output_dir`` None = the trainer's log directory (else its ``default_root_dir``). Under DDP every rank writes
    its part and rank 0 merges them (rows in rank order; Lightning's predict sampler does not repeat examples).
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self._frames: list[pd.DataFrame] = []

    def _dir(self, trainer: pl.Trainer) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(trainer.log_dir or trainer.default_root_dir)

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._frames = []

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        self._frames.append(pl_module.prediction_frame(batch, prediction))

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out_dir = self._dir(trainer)
        frame = pd.concat(self._frames, ignore_index=True) if self._frames else pd.DataFrame({"id": []})
        self._frames = []
        if trainer.world_size == 1:
            write_csv_atomic(frame, out_dir / FILENAME)
            return
        part = out_dir / f"{FILENAME}.rank{trainer.global_rank}"
        write_csv_atomic(frame, part)
        trainer.strategy.barrier("prediction_parts")
        if trainer.is_global_zero:
            parts = [out_dir / f"{FILENAME}.rank{r}" for r in range(trainer.world_size)]
            merged = pd.concat([pd.read_csv(p, dtype={"id": str}) for p in parts], ignore_index=True)
            write_csv_atomic(merged, out_dir / FILENAME)
            for p in parts:
                p.unlink(missing_ok=True)
        trainer.strategy.barrier("prediction_merged")

    @property
    def path_hint(self) -> str:
        """Where the CSV goes (for messages)."""
        return str(Path(self.output_dir or "<log dir>") / FILENAME)
