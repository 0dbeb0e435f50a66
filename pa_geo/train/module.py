"""``PaGeoModule``: encoder + task head(s) + loss + metrics for any task spec, single- or multi-task."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from pa_geo.errors import ConfigError
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.tasks.pairs import gather_pair_labels
from pa_geo.tasks.spec import TaskSpec
from pa_geo.train.batch import TaskBatch

if TYPE_CHECKING:
    import pandas as pd


def _key(task: str, split: str) -> str:
    return f"{task}::{split}".replace(".", "_")


class PaGeoModule(pl.LightningModule):
    """Train one shared encoder with a head per task; the embeddings it reads are frozen inputs from the cache.

    Args:
        encoder: maps a PyG batch to :class:`~pa_geo.nn.outputs.EncoderOutput` (``AdapterEncoder`` or a baseline).
        head: the primary task's head (``GraphHead``, ``NodeHead``, ``ContactHead``, ``ProteinPairHead``, ...).
        task: primary task name (linked from ``data.task`` by the CLI).
        aux_tasks: multi-task loss weights ``{aux task: alpha}``; loss = primary + sum(alpha * aux loss).
        aux_heads: one head per auxiliary task (same keys as ``aux_tasks``).
        lr, weight_decay, warmup_steps, min_lr_ratio: AdamW + linear warm-up + cosine (per step) when the CLI
            is given no ``optimizer`` / ``lr_scheduler``; ``warmup_steps`` < 1 is a fraction of all steps.

    Logged: ``train/loss`` (+ ``train/<aux>/loss``), ``val/loss``; metrics per task and split:
    ``val/<metric>``, ``test/<split>/<metric>`` for the primary task and ``val/<aux>/<metric>``,
    ``test/<aux>/<split>/<metric>`` for auxiliary tasks.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, task: str, aux_tasks: dict[str, float] | None = None,
                 aux_heads: dict[str, nn.Module] | None = None, lr: float = 3e-4, weight_decay: float = 0.01,
                 warmup_steps: float = 0.05, min_lr_ratio: float = 0.0) -> None:
        super().__init__()
        from pa_geo.tasks import get_task
        from pa_geo.tasks.losses import build_loss
        from pa_geo.tasks.metrics import build_metrics

        aux_tasks, aux_heads = dict(aux_tasks or {}), dict(aux_heads or {})
        if set(aux_tasks) != set(aux_heads):
            raise ConfigError(f"model.aux_tasks {sorted(aux_tasks)} and model.aux_heads {sorted(aux_heads)} must "
                              "name the same tasks")
        if task in aux_tasks:
            raise ConfigError(f"task {task!r} is both the primary and an auxiliary task")
        self.save_hyperparameters(ignore=["encoder", "head", "aux_heads"])
        self.encoder = encoder
        self.task = task
        self.specs: dict[str, TaskSpec] = {task: get_task(task), **{t: get_task(t) for t in aux_tasks}}
        self.heads = nn.ModuleDict({task: head, **aux_heads})
        self.weights = {task: 1.0, **{t: float(w) for t, w in aux_tasks.items()}}
        self.losses = nn.ModuleDict({t: build_loss(s) for t, s in self.specs.items()})
        self.metrics = nn.ModuleDict()
        for t, spec in self.specs.items():
            for split in [spec.valid_split, *spec.test_splits]:
                self.metrics[_key(t, split)] = build_metrics(spec, self._prefix(t, split))
        self.lr, self.weight_decay = lr, weight_decay
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self._updated: set[str] = set()

    # ---- naming -------------------------------------------------------------------------------------------------
    def _stage_of(self, task: str, split: str) -> str:
        return "val" if split == self.specs[task].valid_split else "test"

    def _prefix(self, task: str, split: str) -> str:
        """``val/`` or ``test/<split>/`` for the primary task; the task name is inserted for auxiliary tasks."""
        stage = self._stage_of(task, split)
        parts = [stage] + ([] if task == self.task else [task]) + ([split] if stage == "test" else [])
        return "/".join(parts) + "/"

    # ---- forward ------------------------------------------------------------------------------------------------
    def forward(self, batch: TaskBatch) -> Any:
        """Head output of ``batch.task``: ``[B, C]`` graph level, ``[N, C]`` node level, ``(logits [P],
        pair_index [2, P])`` residue pairs (for two proteins: indices into ``graphs[0]``'s nodes followed by
        ``graphs[1]``'s)."""
        spec, head = self.specs[batch.task], self.heads[batch.task]
        if spec.input_kind in ("pair", "mutation") and spec.level == "residue_pair":
            a, b = self.encoder(batch.graphs[0]), self.encoder(batch.graphs[1])
            joint = EncoderOutput(graph=a.graph, node=torch.cat([a.node, b.node]),
                                  batch=torch.cat([a.batch, b.batch]))
            offset = torch.tensor([[0], [a.node.shape[0]]], device=a.node.device)
            return head(joint, batch.pair_index + offset)
        if spec.input_kind in ("pair", "mutation"):
            return head(self.encoder(batch.graphs[0]), self.encoder(batch.graphs[1]))
        out: EncoderOutput = self.encoder(batch.graphs[0])
        if spec.input_kind == "ligand":
            return head(out, batch.graphs[1])
        return head(out)

    def step_outputs(self, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """``(preds, target, mask, metric_kwargs)`` of a batch, raw head outputs (logits / standardised values).

        graph level   preds ``[B, C]``, target ``[B]`` int64 or ``[B, T]``, mask None
        node level    preds ``[N, C]``, target ``graphs[0].node_y`` ``[N(, T)]``, mask ``node_y_mask [N]``
        residue pair  the head returns ``(logits [P], pair_index [2, P])`` over batch node indices; target ``[P]``
                      0/1 read from ``pair_y``, mask ``[P]`` (both residues labelled), metric kwargs
                      ``pair_index`` and ``batch``
        ``group`` (per-group metrics, e.g. PSR targets) is ``batch.extra[spec.options.get("group_key", "target")]``.
        """
        spec = self.specs[batch.task]
        out = self(batch)
        kwargs: dict[str, Any] = {}
        group_key = spec.options.get("group_key", "target")
        if group_key is not None and group_key in batch.extra:
            kwargs["group"] = batch.extra[group_key]
        if spec.level == "graph":
            return out, batch.y, None, kwargs
        g = batch.graphs[0]
        if spec.level == "node":
            return out, g.node_y, g.node_y_mask, kwargs
        logits, pair_index = out
        if batch.pair_index is not None:  # two proteins: labels came with the pairs
            return logits, batch.pair_y, None, kwargs
        target, _ = gather_pair_labels(batch.pair_y, pair_index, g.batch)
        mask = g.node_y_mask[pair_index[0]] & g.node_y_mask[pair_index[1]]
        return logits, target, mask, {**kwargs, "pair_index": pair_index, "batch": g.batch}

    def _task_loss(self, batch: TaskBatch) -> tuple[torch.Tensor, tuple]:
        preds, target, mask, kwargs = self.step_outputs(batch)
        return self.losses[batch.task](preds, target, mask), (preds, target, mask, kwargs)

    def training_step(self, batch: TaskBatch | dict[str, TaskBatch], batch_idx: int) -> torch.Tensor:
        batches = batch if isinstance(batch, dict) else {batch.task: batch}
        total = torch.zeros((), device=self.device)
        for task, b in batches.items():
            if b is None:
                continue
            loss, _ = self._task_loss(b)
            total = total + self.weights[task] * loss
            name = "train/loss" if len(batches) == 1 else f"train/{task}/loss"
            self.log(name, loss, batch_size=b.num_graphs, prog_bar=task == self.task)
        if len(batches) > 1:
            self.log("train/loss", total, prog_bar=False)
        return total

    def _eval_step(self, batch: TaskBatch) -> None:
        loss, (preds, target, mask, kwargs) = self._task_loss(batch)
        if self._stage_of(batch.task, batch.split) == "val":
            name = "val/loss" if batch.task == self.task else f"val/{batch.task}/loss"
            self.log(name, loss, batch_size=batch.num_graphs, sync_dist=True, add_dataloader_idx=False)
        preds = self.losses[batch.task].denormalize(preds.detach())
        self.metrics[_key(batch.task, batch.split)].update(preds, target, mask=mask, **kwargs)
        self._updated.add(_key(batch.task, batch.split))

    def validation_step(self, batch: TaskBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def test_step(self, batch: TaskBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def _log_metrics(self, stage: str) -> None:
        for t, spec in self.specs.items():
            splits = [spec.valid_split] if stage == "val" else spec.test_splits
            for split in splits:
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

    def predict_step(self, batch: TaskBatch, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """The head output of :meth:`forward` (regression de-standardised to label units)."""
        out = self(batch)
        if self.specs[batch.task].level == "residue_pair":
            return out[0].detach(), out[1]
        return self.losses[batch.task].denormalize(out.detach())

    def prediction_frame(self, batch: TaskBatch, output: Any) -> "pd.DataFrame":
        """Rows of :func:`pa_geo.train.predictions.prediction_rows` for one predicted batch."""
        from pa_geo.train.predictions import prediction_rows

        spec, g = self.specs[batch.task], batch.graphs[0]
        if spec.level == "residue_pair":
            logits, pair_index = output
            owner = g.batch[pair_index[0]]
            if batch.pair_index is not None:  # rows: residue in protein A, residue in protein B
                gb = batch.graphs[1]
                local = torch.stack([batch.pair_index[0] - g.ptr[owner], batch.pair_index[1] - gb.ptr[owner]])
            else:
                local = pair_index - g.ptr[owner]
            return prediction_rows(spec, batch.ids, logits, pairs=local, pair_batch=owner)
        if spec.level == "node":
            return prediction_rows(spec, batch.ids, output, node_batch=g.batch,
                                   residue_number=getattr(g, "residue_number", None))
        return prediction_rows(spec, batch.ids, output)

    # ---- set-up -------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Check that the datamodule serves this model's tasks; take regression target statistics from its train
        split (stored as loss buffers, so checkpoints carry them to ``test`` / ``predict``)."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "task_names"):
            return
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
        from pa_geo.nn.params import ESM1B_NUM_PARAMS, parameter_report

        dm = getattr(self.trainer, "datamodule", None)
        backbones = {str(e.get("backbone")) for e in getattr(dm, "embeddings", [])}
        reference = {"esm1b (frozen, cached)": ESM1B_NUM_PARAMS} if "esm1b" in backbones else None
        trained = nn.ModuleDict({"encoder": self.encoder, "heads": self.heads})
        rank_zero_info(f"parameters of {type(self.encoder).__name__} + heads:\n"
                       f"{parameter_report(trained, frozen_reference=reference)}")

    def configure_optimizers(self) -> dict[str, Any]:
        from pa_geo.train.optim import adamw_warmup_cosine

        total = int(self.trainer.estimated_stepping_batches)
        warmup = self.warmup_steps if self.warmup_steps >= 1 else self.warmup_steps * total
        opt, sched = adamw_warmup_cosine(self.parameters(), self.lr, self.weight_decay, total, int(warmup),
                                         self.min_lr_ratio)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
