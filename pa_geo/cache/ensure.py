"""Before training: embed every protein the run needs that the cache lacks (``pa-geo fit`` calls this).

The embedding sources are the config's ``data.embeddings`` entries (``{cache, backbone, layers}``). Each backbone
is built once (its weights fingerprinted), the proteins stream through in chunks, and
:func:`pa_geo.cache.runner.embed_proteins` embeds what is missing (progress bar in residues/s, one LMDB
transaction per batch, so an interrupted run resumes where it stopped). Proteins a backbone refuses are logged one
line each and returned. A task reads only the backbone levels it can use (:func:`keep_levels`: no structure level
without coordinates).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch

from pa_geo.backbones.base import BACKBONES, Backbone, get_backbone
from pa_geo.cache.runner import EmbedSummary, embed_proteins
from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein

LOG = logging.getLogger(__name__)
DEFAULT_CHUNK = 2048


SOURCE_KEYS = ("cache", "backbone", "layers", "options")


@dataclass(frozen=True)
class SourceConfig:
    """One ``data.embeddings`` entry: cache root, backbone name, layers, and the backbone's keyword arguments
    (``options``, e.g. ``{model: <directory or hub id>}`` for ``hf``)."""

    cache: str
    backbone: str
    layers: tuple[int | str, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, source: Mapping[str, Any] | Any) -> "SourceConfig":
        """From a config dict (``cache`` / ``backbone`` / ``layers`` / optional ``options``) or an object with
        ``cache_root``, ``backbone``, ``layers`` attributes (``EmbeddingSource``)."""
        if isinstance(source, Mapping):
            cache, name, layers = source.get("cache"), source.get("backbone"), source.get("layers")
            options = source.get("options") or {}
        else:
            cache = getattr(source, "cache_root", None) or getattr(source, "cache", None)
            name, layers, options = getattr(source, "backbone", None), getattr(source, "layers", None), {}
        if cache is None or name is None or layers is None:
            raise ConfigError(f"embedding source {source!r} needs cache, backbone and layers")
        layers = tuple(layers) if isinstance(layers, (list, tuple)) else (layers,)
        return cls(str(cache), str(name), layers, dict(options))

    @property
    def level(self) -> str:
        """``sequence`` or ``structure``: the backbone class's level (no model is built)."""
        return str(BACKBONES.get(self.backbone).level)

    def as_dict(self) -> dict[str, Any]:
        """The ``data.embeddings`` entry (``options`` only when there are some)."""
        out: dict[str, Any] = {"cache": self.cache, "backbone": self.backbone, "layers": list(self.layers)}
        return {**out, "options": dict(self.options)} if self.options else out


@dataclass
class EnsureReport:
    """What :func:`embed_missing` did, per backbone: summaries, and every refused ``(protein id, reason)``."""

    summaries: dict[str, EmbedSummary] = field(default_factory=dict)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (backbone, protein id, reason)

    @property
    def embedded(self) -> int:
        """Proteins embedded now, summed over backbones."""
        return sum(s.embedded for s in self.summaries.values())


def build_backbones(sources: Sequence[Any], device: str | None = None) -> list[tuple[SourceConfig, Backbone]]:
    """Each source with its backbone, built with the source's layers and options on ``device`` (default: CUDA
    when available, else CPU)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = []
    for src in map(SourceConfig.of, sources):
        backbone = get_backbone(src.backbone, layers=list(src.layers), **src.options)
        out.append((src, backbone.to(device)))
    return out


def keep_levels(sources: Sequence[Any], levels: Sequence[str], where: str) -> tuple[list[Any], list[SourceConfig]]:
    """``(kept sources as given, left-out SourceConfigs)``: the sources whose backbone level is in ``levels`` (one
    INFO log line names the others, with ``where``: why they are left out); none kept is a one-line
    :class:`ConfigError`."""
    kept, dropped = [], []
    for source in sources:
        cfg = SourceConfig.of(source)
        (kept if cfg.level in levels else dropped).append(source if cfg.level in levels else cfg)
    if dropped:
        LOG.info("%s: leaving out the %s level (%s); the model uses %s", where,
                    " and ".join(sorted({s.level for s in dropped})),
                    ", ".join(f"{s.backbone} layer(s) {', '.join(map(str, s.layers))}" for s in dropped),
                    ", ".join(SourceConfig.of(s).backbone for s in kept) or "nothing")
    if not kept:
        raise ConfigError(f"{where}: every embedding source is {' or '.join(sorted({s.level for s in dropped}))}-"
                          f"level ({', '.join(s.backbone for s in dropped)}); add a {' or a '.join(levels)} backbone")
    return kept, dropped


def _chunks(items: Iterable[Protein], size: int) -> Iterator[list[Protein]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def embed_missing(built: Sequence[tuple[SourceConfig, Backbone]], proteins: Iterable[Protein | Exception],
                  progress: bool = True, chunk: int = DEFAULT_CHUNK,
                  batch_tokens: int | None = None) -> EnsureReport:
    """Embed every protein of ``proteins`` that a source's cache lacks, for every source.

    Args:
        built: ``(source, backbone)`` pairs from :func:`build_backbones`.
        proteins: the proteins of every split; exceptions in the stream (rows a table could not read, already
            counted by the table) are passed over.
        progress: the runner's tqdm bar per backbone and chunk.
        chunk: proteins held in memory at once.
        batch_tokens: padded residues per forward pass (None: the backbone's measured default for its device).
    Returns:
        :class:`EnsureReport`; every refused protein is also logged as one line ``refused <id> (<backbone>):
        <reason>``.
    """
    report = EnsureReport()
    for part in _chunks((p for p in proteins if isinstance(p, Protein)), chunk):
        for src, backbone in built:
            summary = embed_proteins(backbone, part, src.cache, batch_tokens=batch_tokens, progress=progress)
            total = report.summaries.setdefault(f"{src.backbone} ({src.cache})", EmbedSummary())
            total.embedded += summary.embedded
            total.cached += summary.cached
            total.residues += summary.residues
            total.seconds += summary.seconds
            total.refused.extend(summary.refused)
            for pid, reason in summary.refused:
                LOG.warning("refused %s (%s): %s", pid, backbone.registry_name, reason)
                report.refused.append((backbone.registry_name, pid, reason))
    for key, s in report.summaries.items():
        s.residues_per_s = s.residues / s.seconds if s.seconds > 0 else 0.0
        LOG.info("embeddings %s: %d embedded, %d already cached, %d refused", key, s.embedded, s.cached,
                 len(s.refused))
    return report
