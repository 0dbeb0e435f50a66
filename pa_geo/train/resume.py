"""Exact resume: a run killed after a checkpoint and resumed from it (``pa-geo fit --ckpt_path last.ckpt``) trains on
the same batches with the same random draws as the run that was never interrupted.

Lightning restores weights, optimiser, scheduler, step and epoch. What else decides the next losses:

- the random generators (dropout draws from torch's global generator): :class:`ResumeState` stores torch's (CPU and
  CUDA), numpy's and Python's states in the checkpoint and puts them back when training starts again, after the
  sanity check and before the first batch, the point where the uninterrupted run stood when it saved;
- the batch order: ``NodeBudgetBatchSampler`` shuffles with its own generator seeded by ``seed + epoch``; the epoch
  and the position inside it (a checkpoint saved mid-epoch) are stored here and handed to the data module
  (``PaGeoDataModule.resume_at``) before Lightning builds the training loaders, whose samplers then start at that
  epoch and skip the batches already trained on (``NodeBudgetBatchSampler.skip_next``);
- DataLoader workers: every loader has its own generator seeded by the data seed
  (``PaGeoDataModule``), so starting workers draws nothing from the global generator and gives them the same seeds
  however often they are started; per-example random draws (ATOM3D PPI pairs) are seeded by (seed, epoch, index).

Under DDP only rank 0's generator states reach the checkpoint (Lightning saves from rank 0); every rank restores
them, so a resumed multi-process run is reproducible but its dropout draws differ from the uninterrupted run's.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback


def rng_state() -> dict[str, Any]:
    """torch (CPU, every CUDA device once CUDA is initialised), numpy and Python generator states, as tensors and
    plain values (a checkpoint loads with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(Callback):
    """Saves the generator states and the position in the epoch with every checkpoint; restores both when a run
    resumes from one. ``PaGeoModule.configure_callbacks`` adds it to every run.

    Checkpoint entry (``checkpoint["callbacks"]["ResumeState"]``): ``rng`` (:func:`rng_state`), ``epoch``, ``batches``
    (training batches of that epoch already done, Lightning's count), ``epoch_batches`` (the epoch's length).
    """

    def __init__(self) -> None:
        self._trainer: Any = None
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        if trainer is None:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return {"rng": rng_state(), "epoch": int(trainer.current_epoch), "batches": int(progress.processed),
                "epoch_batches": float(trainer.num_training_batches)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the generator states for :meth:`on_train_start`; tell the data module where the next training pass
        starts (before Lightning builds the loaders: a DataLoader with workers draws its first batches as soon as
        Lightning creates its iterator, before any epoch hook runs)."""
        self._pending = dict(state_dict) if state_dict else None
        if not self._pending:
            return
        epoch, done = int(state_dict.get("epoch", 0)), int(state_dict.get("batches", 0))
        finished = done >= float(state_dict.get("epoch_batches", 0))
        datamodule = getattr(self._trainer, "datamodule", None)
        if callable(getattr(datamodule, "resume_at", None)):
            datamodule.resume_at(epoch + 1 if finished else epoch, 0 if finished else done)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        state, self._pending = self._pending, None
        if state:
            set_rng_state(state["rng"])
