"""``PaGeoModule``: one shared encoder + a head per task; loss weighting, logging and optimisation. What depends on
the kind of a task (how encoder and head are called, targets, masks, prediction rows) is the task kind's."""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch_geometric.data import Batch

from pa_geo.errors import CheckpointError, ConfigError, DatasetError
from pa_geo.nn.params import ESM1B_NUM_PARAMS, parameter_report
from pa_geo.tasks import TASKS, get_kind, get_task
from pa_geo.tasks.kinds import StepOutputs, TaskKind
from pa_geo.tasks.metrics import build_metrics
from pa_geo.tasks.spec import TaskSpec, spec_from_record
from pa_geo.train.checkpoint_meta import META_KEY, checkpoint_metadata, read_metadata
from pa_geo.train.checkpoints import CheckpointGuard, check_state_dict, checkpoint_file, load_checkpoint, loading
from pa_geo.train.prediction_columns import merge_task_frames, predicted_tasks, task_columns
from pa_geo.train.optim import adamw_warmup_cosine
from pa_geo.train.shared_batches import OncePerBatch, shared_tasks, task_view
from pa_geo.train.resume import ResumeState

if TYPE_CHECKING:
    import pandas as pd


def _holds_module(value: Any) -> bool:
    return isinstance(value, nn.Module) or (isinstance(value, dict) and any(isinstance(v, nn.Module)
                                                                             for v in value.values()))


def _unregistered_specs(hparams: dict[str, Any], meta: Any) -> dict[str, Any]:
    """``task_spec`` / ``aux_task_specs`` from a checkpoint's ``pa_geo`` block for its tasks that this process has
    not registered (and the hyper-parameters do not carry)."""
    if not isinstance(meta, dict):
        return {}
    out: dict[str, Any] = {}
    task = hparams.get("task")
    if task and hparams.get("task_spec") is None and isinstance(meta.get("task"), dict) and task not in TASKS:
        out["task_spec"] = meta["task"]
    aux = {t: rec for t, rec in (meta.get("aux_tasks") or {}).items()
           if t in (hparams.get("aux_tasks") or {}) and t not in (hparams.get("aux_task_specs") or {})
           and t not in TASKS}
    if aux:
        out["aux_task_specs"] = {**(hparams.get("aux_task_specs") or {}), **aux}
    return out


def _key(task: str, split: str) -> str:
    return f"{task}::{split}".replace(".", "_")


class PaGeoModule(pl.LightningModule):
    """Train one shared encoder with a head per task; the embeddings it reads are frozen inputs from the cache.

    Args:
        encoder: maps a PyG batch to :class:`~pa_geo.nn.outputs.EncoderOutput` (``AdapterEncoder`` or a baseline).
        head: the primary task's head (``GraphHead``, ``NodeHead``, ``ContactHead``, ...); its widths are bound
            here from the encoder and the task (``TaskKind.bind_head``), so a config never states them.
        task: primary task name (linked from ``data.task`` by the CLI).
        aux_tasks: multi-task loss weights ``{aux task: alpha}``; loss = primary + sum(alpha * aux loss).
        aux_heads: one head per auxiliary task (same keys as ``aux_tasks``).
        lr, weight_decay, warmup_steps, min_lr_ratio: AdamW + linear warm-up + cosine (per step) when the CLI
            is given no ``optimizer`` / ``lr_scheduler``; ``warmup_steps`` < 1 is a fraction of all steps.
        task_spec: the primary task's spec as plain values, for a task that is not registered (a label table: the
            CLI takes it from the data module, ``PaGeoDataModule.task_spec_record``); ``load_from_checkpoint``
            rebuilds the task from it.
        aux_task_specs: ``{aux task: spec as plain values}`` for auxiliary tasks that are not registered here;
            ``load_from_checkpoint`` fills it (and ``task_spec``) from the checkpoint for tasks this process does not
            know, so a checkpoint predicts without the code that registered its tasks.

    Built by the CLI, the hyper-parameters hold the encoder and head configs too, and checkpoints carry the data
    side (``pa_geo.train.checkpoint_meta``), so ``PaGeoModule.load_from_checkpoint(path)`` needs no other argument
    and ``pa-geo predict --ckpt_path ... --input ...`` needs no config.

    Batches: PyG ``Batch`` es with ``task`` / ``split`` set (``pa_geo.train.collate.TaskCollater``), or
    ``{task: batch}`` in multi-task training. Logged: ``train/loss`` (+ ``train/<aux>/loss``), ``val/loss``; metrics
    ``val/<metric>``, ``test/<split>/<metric>`` for the primary task, ``val/<aux>/<metric>``,
    ``test/<aux>/<split>/<metric>`` for auxiliary tasks.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, task: str, aux_tasks: dict[str, float] | None = None,
                 aux_heads: dict[str, nn.Module] | None = None, lr: float = 3e-4, weight_decay: float = 0.01,
                 warmup_steps: float = 0.05, min_lr_ratio: float = 0.0,
                 task_spec: dict[str, Any] | None = None,
                 aux_task_specs: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        aux_tasks, aux_heads = dict(aux_tasks or {}), dict(aux_heads or {})
        if set(aux_tasks) != set(aux_heads):
            raise ConfigError(f"model.aux_tasks {sorted(aux_tasks)} and model.aux_heads {sorted(aux_heads)} must "
                              "name the same tasks")
        if task in aux_tasks:
            raise ConfigError(f"task {task!r} is both the primary and an auxiliary task")
        # Every init argument; encoder / head too when they are configs (the CLI stores their class_path /
        # init_args, which load_from_checkpoint rebuilds), never module objects (research code passes those).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        self.remove_ignored_hparams([k for k in ("encoder", "head", "aux_heads")
                                     if _holds_module(self.hparams.get(k))])
        self.encoder = encoder
        self.task = task
        primary = spec_from_record(dict(task_spec)) if task_spec is not None else get_task(task)
        if primary.name != task:
            raise ConfigError(f"model.task {task!r} does not match model.task_spec (task {primary.name!r})")
        given = dict(aux_task_specs or {})
        self.specs: dict[str, TaskSpec] = {task: primary, **{t: spec_from_record(dict(given[t])) if t in given
                                                            else get_task(t) for t in aux_tasks}}
        self.kinds: dict[str, TaskKind] = {t: get_kind(s) for t, s in self.specs.items()}
        self.heads = nn.ModuleDict({task: head, **aux_heads})
        for t, kind in self.kinds.items():
            kind.bind_head(self.heads[t], encoder)
        self.weights = {task: 1.0, **{t: float(w) for t, w in aux_tasks.items()}}
        self.losses = nn.ModuleDict({t: k.build_loss() for t, k in self.kinds.items()})
        self.metrics = nn.ModuleDict()
        for t, spec in self.specs.items():
            for split in [spec.valid_split, *spec.test_splits]:
                self.metrics[_key(t, split)] = build_metrics(spec, self._prefix(t, split))
        self.lr, self.weight_decay = lr, weight_decay
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self._updated: set[str] = set()
        self._checked: set[str] = set()

    # ---- naming -------------------------------------------------------------------------------------------------
    def _stage_of(self, task: str, split: str) -> str:
        return "val" if split == self.specs[task].valid_split else "test"

    def _prefix(self, task: str, split: str) -> str:
        """``val/`` or ``test/<split>/`` for the primary task; the task name is inserted for auxiliary tasks."""
        stage = self._stage_of(task, split)
        parts = [stage] + ([] if task == self.task else [task]) + ([split] if stage == "test" else [])
        return "/".join(parts) + "/"

    def _task_of(self, batch: Batch) -> str:
        return getattr(batch, "task", None) or self.task

    # ---- forward ------------------------------------------------------------------------------------------------
    def _check_fields(self, task: str, batch: Batch) -> None:
        """First batch of a task: every field the encoder declares (``required_batch_attributes``) is present."""
        if task in self._checked:
            return
        need = getattr(self.encoder, "required_batch_attributes", None) or ()
        kind = self.kinds[task]
        views = kind.views(batch)
        for part in kind.encoded_parts:
            view = views[part]
            missing = [f for f in need if f not in view]
            if missing:
                where = f" (graph part {part!r})" if part else ""
                raise DatasetError(f"task {task}: the batch has no {', '.join(missing)}{where} for "
                                   f"{type(self.encoder).__name__}; add the embeddings to data.embeddings or change "
                                   f"the encoder's levels")
        self._checked.add(task)

    @staticmethod
    def _float32(batch: Batch) -> Batch:
        """float16 fields (embeddings, edge features travel in the dtype they are stored in) -> float32, in place."""
        for key, value in list(batch.items()):
            if isinstance(value, torch.Tensor) and value.dtype == torch.float16:
                batch[key] = value.float()
        return batch

    def forward(self, batch: Batch) -> Any:
        """Head output of the batch's task (shapes: the task kind's ``forward``); float16 inputs become float32."""
        batch = self._float32(batch)
        task = self._task_of(batch)
        self._check_fields(task, batch)
        return self.kinds[task].forward(self.encoder, self.heads[task], batch)

    def step_outputs(self, batch: Batch) -> StepOutputs:
        """``(preds, target, mask, metric_kwargs)`` of a batch, raw head outputs (logits / standardised values)."""
        return self.kinds[self._task_of(batch)].outputs(batch, self(batch))

    def _task_loss(self, batch: Batch, encoder: nn.Module | None = None) -> tuple[torch.Tensor, StepOutputs]:
        """The loss of a batch and its step outputs; ``encoder``: the encoder to call instead of ``self.encoder``
        (one that runs once for several views of a shared batch)."""
        if encoder is None:
            out = self.step_outputs(batch)
        else:
            task = self._task_of(batch)
            batch = self._float32(batch)
            self._check_fields(task, batch)
            out = self.kinds[task].outputs(batch, self.kinds[task].forward(encoder, self.heads[task], batch))
        return self.losses[self._task_of(batch)](out.preds, out.target, out.mask), out

    def _shared_views(self, batch: Batch) -> dict[str, Batch]:
        """A batch of the primary task carrying auxiliary labels (``data.aux_shared_batches``) as one view per task;
        any other batch as itself."""
        primary = self._task_of(batch)
        shared = shared_tasks(batch, [t for t in self.specs if t != primary])
        if not shared:
            return {primary: batch}
        batch = self._float32(batch)
        return {primary: batch, **{t: task_view(batch, t) for t in shared}}

    def training_step(self, batch: Batch | dict[str, Batch], batch_idx: int) -> torch.Tensor:
        batches = batch if isinstance(batch, dict) else self._shared_views(batch)
        total = torch.zeros((), device=self.device)
        # views of one shared batch: one encoder pass for every task's head
        encoder = OncePerBatch(self.encoder) if len(batches) > 1 and not isinstance(batch, dict) else None
        losses = {task: self._task_loss(b, encoder)[0] for task, b in batches.items() if b is not None}
        for task, b in batches.items():
            if b is None:
                continue
            loss = losses[task]
            total = total + self.weights[task] * loss
            name = "train/loss" if len(batches) == 1 else f"train/{task}/loss"
            self.log(name, loss, batch_size=b.num_graphs, prog_bar=task == self.task)
        if len(batches) > 1:
            self.log("train/loss", total, prog_bar=False)
        return total

    def _eval_step(self, batch: Batch) -> None:
        task, split = self._task_of(batch), getattr(batch, "split", None) or self.specs[self.task].valid_split
        loss, (preds, target, mask, kwargs) = self._task_loss(batch)
        if self._stage_of(task, split) == "val":
            name = "val/loss" if task == self.task else f"val/{task}/loss"
            self.log(name, loss, batch_size=batch.num_graphs, sync_dist=True, add_dataloader_idx=False)
        preds = self.losses[task].denormalize(preds.detach())
        self.metrics[_key(task, split)].update(preds, target, mask=mask, **kwargs)
        self._updated.add(_key(task, split))

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def _log_metrics(self, stage: str) -> None:
        for t, spec in self.specs.items():
            for split in [spec.valid_split] if stage == "val" else spec.test_splits:
                key = _key(t, split)
                if key not in self._updated:  # split not evaluated in this run (e.g. validate only)
                    continue
                metric = self.metrics[key]
                values = metric.compute()
                # torchmetrics already reduced over ranks; sync_dist only averages identical values
                self.log_dict({k: float(v) for k, v in values.items()}, add_dataloader_idx=False, sync_dist=True)
                metric.reset()
                self._updated.discard(key)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """The head output of :meth:`forward` in label units (regression de-standardised); for the primary task
        of a multi-task model ``{task: output}`` of every head of its kind (the encoder runs once:
        :mod:`pa_geo.train.prediction_columns`)."""
        task = self._task_of(batch)
        tasks = predicted_tasks(task, self.kinds) if task == self.task else [task]
        if len(tasks) == 1:
            return self.kinds[task].predict(self(batch), self.losses[task])
        batch = self._float32(batch)
        self._check_fields(task, batch)
        encoder = OncePerBatch(self.encoder)
        return {t: self.kinds[t].predict(self.kinds[t].forward(encoder, self.heads[t], batch), self.losses[t])
                for t in tasks}

    def prediction_frame(self, batch: Batch, output: Any) -> "pd.DataFrame":
        """Prediction rows of one predicted batch (``TaskKind.prediction_frame`` of each predicted head, columns
        named by :mod:`pa_geo.train.prediction_columns`)."""
        task = self._task_of(batch)
        if not isinstance(output, dict):
            return task_columns(self.kinds[task].prediction_frame(batch, output), self.specs[task], primary=True)
        frames = {t: self.kinds[t].prediction_frame(batch, out) for t, out in output.items()}
        return merge_task_frames(frames, self.specs, task)

    # ---- set-up -------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Check that the datamodule serves this model's tasks; take regression target statistics from its train
        split (stored as loss buffers, so checkpoints carry them to ``test`` / ``predict``)."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "task_names"):
            return
        if stage == "predict" and list(dm.task_names)[:1] == [self.task]:
            return  # predicting reads the primary task's inputs; every head of its kind predicts them
        if list(dm.task_names) != list(self.specs):
            raise ConfigError(f"data tasks {dm.task_names} differ from model tasks {list(self.specs)}: set "
                              "data.aux_tasks and model.aux_tasks / model.aux_heads to the same tasks")
        if stage != "fit":
            return
        for t, loss in self.losses.items():
            stats = dm.target_stats(t) if loss.kind in ("mse", "l1") else None
            if stats is not None and "target_stats" not in self.specs[t].options:
                loss.mean.fill_(stats[0])
                loss.std.fill_(stats[1])

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        backbones = {str(e.get("backbone")) for e in getattr(dm, "embeddings", [])}
        reference = {"esm1b (frozen, cached)": ESM1B_NUM_PARAMS} if "esm1b" in backbones else None
        trained = nn.ModuleDict({"encoder": self.encoder, "heads": self.heads})
        rank_zero_info(f"parameters of {type(self.encoder).__name__} + heads:\n"
                       f"{parameter_report(trained, frozen_reference=reference)}")

    # ---- checkpoints (pa_geo.train.checkpoints: validated reads, atomic writes; pa_geo.train.resume) --------------
    def configure_callbacks(self) -> list[Any]:
        """Every run of this module writes checkpoints atomically and resumes exactly (RNG states and the position
        in the epoch travel in the checkpoint)."""
        return [CheckpointGuard(), ResumeState()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what prediction from the checkpoint alone needs (``checkpoint["pa_geo"]``: task, backbones and
        their weights fingerprints, graph recipe; :mod:`pa_geo.train.checkpoint_meta`)."""
        checkpoint[META_KEY] = checkpoint_metadata(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._checkpoint_meta = checkpoint.get(META_KEY)
        self._checkpoint_file = checkpoint_file(checkpoint)

    def checkpoint_meta(self, path: str = "checkpoint") -> dict[str, Any]:
        """The ``pa_geo`` block of the checkpoint this model was loaded from (one-line error when absent)."""
        return read_metadata({"pa_geo": getattr(self, "_checkpoint_meta", None)}, path)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict`` after checking that the weights fit this model: a checkpoint of another
        head / encoder size is one line naming the parameter and both shapes (``CheckpointError``)."""
        check_state_dict(self, state_dict, strict, getattr(self, "_checkpoint_file", None))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, map_location: Any = None, hparams_file: Any = None,
                             strict: bool | None = None, **kwargs: Any) -> "PaGeoModule":
        """Lightning's ``load_from_checkpoint`` on a checked file: a missing, empty, truncated, damaged or foreign
        file, or weights that do not fit the model, are one ``CheckpointError`` line. Built by the CLI, the
        checkpoint's hyper-parameters rebuild the model with no other argument."""
        if isinstance(checkpoint_path, (str, os.PathLike)):
            checkpoint = load_checkpoint(checkpoint_path)
            saved = checkpoint.get("hyper_parameters") or {}
            kwargs = {**_unregistered_specs(saved, checkpoint.get(META_KEY)), **kwargs}
            missing = [k for k in ("encoder", "head") if k not in saved and k not in kwargs]
            if missing and hparams_file is None:
                raise CheckpointError(f"{checkpoint_path}: the checkpoint does not say how its model was built (no "
                                      f"{' or '.join(missing)} settings: saved by an older pa_geo, or from a model "
                                      f"built in Python); pass {' and '.join(f'{k}=' for k in missing)} to "
                                      f"load_from_checkpoint, or predict with the config it was trained with: "
                                      f"pa-geo predict --config <config> --ckpt_path {checkpoint_path}")
        with loading(checkpoint_path):
            return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)

    def configure_optimizers(self) -> dict[str, Any]:
        total = int(self.trainer.estimated_stepping_batches)
        warmup = self.warmup_steps if self.warmup_steps >= 1 else self.warmup_steps * total
        opt, sched = adamw_warmup_cosine(self.parameters(), self.lr, self.weight_decay, total, int(warmup),
                                         self.min_lr_ratio)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
