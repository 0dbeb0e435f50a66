"""The one checkpoint callback of the shipped configs: ``best.ckpt`` on the monitored metric and ``last.ckpt`` of the
latest epoch."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint


class BestAndLastCheckpoint(ModelCheckpoint):
    """``<dirpath>/best.ckpt``: the best epoch on ``monitor`` (what ``trainer.test(ckpt_path="best")`` and
    ``pa-geo predict --ckpt_path`` use), and ``<dirpath>/last.ckpt``: the end of every epoch, improved or not (what
    ``pa-geo fit --ckpt_path last.ckpt`` resumes from). Lightning's own ``save_last`` rewrites ``last.ckpt`` only
    when the best checkpoint changes, hence this callback. :attr:`best_epoch` is the epoch of ``best.ckpt``.

    Takes ``ModelCheckpoint``'s arguments; ``save_top_k`` is 1 and the file names are fixed.
    """

    def __init__(self, dirpath: str | Path | None = None, monitor: str | None = None, mode: str = "min",
                 **kwargs: Any) -> None:
        super().__init__(dirpath=dirpath, monitor=monitor, mode=mode, filename="best", save_top_k=1, save_last=True,
                         enable_version_counter=False, **kwargs)
        self.best_epoch: int | None = None

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        """Lightning's save event (end of a training epoch, or of validation): the best checkpoint as usual, then
        marks this step as saved, which makes Lightning write ``last.ckpt`` now whether or not the best changed."""
        before = self.best_model_score
        super()._save_topk_checkpoint(trainer, monitor_candidates)
        score = self.best_model_score
        if score is not None and (before is None or not torch.equal(torch.as_tensor(before), torch.as_tensor(score))):
            self.best_epoch = trainer.current_epoch
        self._last_global_step_saved = trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.best_epoch = state_dict.pop("best_epoch", None)
        super().load_state_dict(state_dict)
