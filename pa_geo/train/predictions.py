"""``predict`` output: one CSV of the task kind's rows (``TaskKind.prediction_frame``: one per protein, per residue or
per residue pair), shaped by the data module (``PaGeoDataModule.prediction_rows``: input order and residue columns
for input files), written atomically; under DDP rank 0 merges the ranks' parts. The one writer of both ``pa-geo
predict --config`` and ``pa-geo predict --ckpt_path --input``."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

FILENAME = "predictions.csv"


def write_csv_atomic(frame: pd.DataFrame, path: Path, sep: str = ",") -> None:
    """Write ``frame`` to ``path`` (``sep``-separated) through a temporary file in the same directory and a
    rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False, sep=sep)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PredictionCSVWriter(BasePredictionWriter):
    """Write the predictions at the end of ``predict``: to ``output`` (a CSV file), else to
    ``<output_dir>/predictions.csv``; ``output_dir`` None = the trainer's log directory (else its
    ``default_root_dir``). Under DDP every rank writes its part and rank 0 merges them (rows in rank order;
    Lightning's predict sampler does not repeat examples). :attr:`rows` is the number of rows written.
    """

    def __init__(self, output_dir: str | None = None, output: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.output = output
        self.rows = 0
        self.write_s = 0.0  # wall seconds of the last predict's rows: the frames of its batches and the CSV
        self._frames: list[pd.DataFrame] = []

    def path(self, trainer: pl.Trainer) -> Path:
        """Where the CSV goes."""
        if self.output is not None:
            return Path(self.output)
        return Path(self.output_dir or trainer.log_dir or trainer.default_root_dir) / FILENAME

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._frames = []
        self.write_s = 0.0

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        start = time.perf_counter()
        self._frames.append(pl_module.prediction_frame(batch, prediction))
        self.write_s += time.perf_counter() - start

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        try:
            self._write(trainer)
        finally:
            self.write_s += time.perf_counter() - start

    def _write(self, trainer: pl.Trainer) -> None:
        path = self.path(trainer)
        frame = pd.concat(self._frames, ignore_index=True) if self._frames else pd.DataFrame({"id": []})
        self._frames = []
        rows = getattr(trainer.datamodule, "prediction_rows", None)
        if trainer.world_size == 1:
            frame = rows(frame) if rows is not None else frame
            write_csv_atomic(frame, path)
            self.rows = len(frame)
            return
        part = path.with_name(f"{path.name}.rank{trainer.global_rank}")
        write_csv_atomic(frame, part)
        trainer.strategy.barrier("prediction_parts")
        if trainer.is_global_zero:
            parts = [path.with_name(f"{path.name}.rank{r}") for r in range(trainer.world_size)]
            merged = pd.concat([pd.read_csv(p, dtype={"id": str}) for p in parts], ignore_index=True)
            merged = rows(merged) if rows is not None else merged
            write_csv_atomic(merged, path)
            self.rows = len(merged)
            for p in parts:
                p.unlink(missing_ok=True)
        trainer.strategy.barrier("prediction_merged")

    @property
    def path_hint(self) -> str:
        """Where the CSV goes (for messages)."""
        return str(Path(self.output or Path(self.output_dir or "<log dir>") / FILENAME))
