"""``predict`` output: ``predictions.csv``, rows from the task kind (``TaskKind.prediction_frame``: one per protein,
per residue or per residue pair), written atomically; under DDP rank 0 merges the ranks' parts."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

FILENAME = "predictions.csv"


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
