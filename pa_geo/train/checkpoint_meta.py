"""What a checkpoint carries besides weights, so that ``pa-geo predict --ckpt_path`` needs no config.

``checkpoint["pa_geo"]`` (written by ``PaGeoModule.on_save_checkpoint``):

    version       pa_geo version that wrote it
    task          the primary task's spec, every field but the loader (:func:`pa_geo.tasks.spec.spec_record`)
    aux_tasks     ``{name: spec}`` of the auxiliary tasks, as ``task`` (a model predicts every head without the
                  code that registered its tasks)
    backbones     per ``data.embeddings`` source: ``backbone``, ``layers``, ``cache``, ``options`` (when given),
                  ``id`` (``<name>-<weights fingerprint>``, from the cache's metadata), ``level``, ``dims``
    graph         the graph recipe (``GraphBuilder.settings``: ``kind``, ``kwargs``, ``ligand``)
    batch_nodes   the data module's node budget

The model's own init arguments (encoder / head classes and sizes, task, ``task_spec``) are Lightning's
hyper-parameters, so ``PaGeoModule.load_from_checkpoint(path)`` rebuilds the model with no other argument.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pa_geo
from pa_geo.cache.ensure import SourceConfig, build_backbones
from pa_geo.datasets.embedded import EmbeddingSource
from pa_geo.errors import CacheError, ConfigError
from pa_geo.tasks.spec import spec_record

META_KEY = "pa_geo"
META_VERSION = 1


def checkpoint_metadata(module: Any) -> dict[str, Any]:
    """``checkpoint["pa_geo"]`` of ``module`` (a ``PaGeoModule``; its trainer's data module gives the data side)."""
    meta: dict[str, Any] = {"format": META_VERSION, "version": getattr(pa_geo, "__version__", ""),
                            "task": spec_record(module.specs[module.task]),
                            "aux_tasks": {t: spec_record(s) for t, s in module.specs.items() if t != module.task}}
    trainer = getattr(module, "_trainer", None)
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    if dm is not None:
        meta["backbones"] = [_source_meta(s) for s in getattr(dm, "embeddings", [])]
        builder = getattr(dm, "builder", None)
        if builder is not None:
            meta["graph"] = builder.settings
        meta["batch_nodes"] = int(getattr(dm, "batch_nodes", 4096))
    return meta


def _source_meta(entry: dict[str, Any]) -> dict[str, Any]:
    source = SourceConfig.of(entry)
    out = source.as_dict()
    layers = out["layers"]
    try:
        store_meta = EmbeddingSource(source.cache, source.backbone, layers).meta
    except CacheError:  # nothing cached yet (a model saved before any data was read)
        return out
    return {**out, "id": store_meta.backbone_id, "level": store_meta.level,
            "dims": {str(k): int(v) for k, v in store_meta.dims.items() if k in layers}}


def read_metadata(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``pa_geo`` block of a loaded checkpoint; a checkpoint without one is a one-line :class:`ConfigError`."""
    meta = checkpoint.get(META_KEY)
    if not isinstance(meta, dict) or "graph" not in meta or "backbones" not in meta:
        raise ConfigError(f"{path}: the checkpoint does not say which backbones and graph settings it was trained "
                          f"with (saved by an older pa_geo); predict with its config: pa-geo predict --config <config> "
                          f"--ckpt_path {path}")
    return meta


def check_backbones(meta: dict[str, Any], path: str | Path, device: str | None = None) -> list[Any]:
    """Build the checkpoint's backbones here and check their weights are the ones it was trained on.

    Returns ``[(SourceConfig, Backbone)]``. A backbone whose weights fingerprint differs from the recorded one is a
    one-line :class:`ConfigError` naming the backbone and both fingerprints; missing weights raise the backbone's
    own one-line ``BackboneUnavailable``.
    """
    built = build_backbones([SourceConfig.of(b).as_dict() for b in meta["backbones"]], device)
    for recorded, (_, backbone) in zip(meta["backbones"], built):
        want = recorded.get("id")
        if want is not None and want != backbone.id:
            raise ConfigError(f"{path}: trained on {recorded['backbone']} weights {want.rsplit('-', 1)[-1]}, but the "
                              f"{backbone.registry_name} weights here have fingerprint {backbone.fingerprint}: its "
                              f"embeddings would not be the ones the model learned from; install the same weights or "
                              f"train again")
    return built
