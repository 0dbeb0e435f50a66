"""Before training: embed every protein the run needs that the cache lacks (``pa-geo fit`` calls this).

The embedding sources are the config's ``data.embeddings`` entries (``{cache, backbone, layers}``). Each backbone
is built once (its weights fingerprinted), the proteins stream through in chunks, and
:func:`pa_geo.cache.runner.embed_proteins` embeds what is missing (progress bar in residues/s, one LMDB
transaction per batch, so an interrupted run resumes where it stopped). Proteins a backbone refuses are logged one
line each and returned. Structure-level backbones are left out when the proteins have no structures
(:func:`drop_structure_sources`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pa_geo.backbones.base import Backbone, get_backbone
from pa_geo.cache.runner import EmbedSummary, embed_proteins
from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein

LOG = logging.getLogger(__name__)
DEFAULT_CHUNK = 2048


@dataclass(frozen=True)
class SourceConfig:
    """One ``data.embeddings`` entry: cache root, backbone name, layers."""

    cache: str
    backbone: str
    layers: tuple[int | str, ...]

    @classmethod
    def of(cls, source: Mapping[str, Any] | Any) -> "SourceConfig":
        """From a config dict (``cache`` / ``backbone`` / ``layers``) or an object with ``cache_root``,
        ``backbone``, ``layers`` attributes (``EmbeddingSource``)."""
        if isinstance(source, Mapping):
            cache, name, layers = source.get("cache"), source.get("backbone"), source.get("layers")
        else:
            cache = getattr(source, "cache_root", None) or getattr(source, "cache", None)
            name, layers = getattr(source, "backbone", None), getattr(source, "layers", None)
        if cache is None or name is None or layers is None:
            raise ConfigError(f"embedding source {source!r} needs cache, backbone and layers")
        layers = tuple(layers) if isinstance(layers, (list, tuple)) else (layers,)
        return cls(str(cache), str(name), layers)


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
    """Each source with its backbone, built with the source's layers on ``device`` (default: CUDA when
    available, else CPU)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = []
    for src in map(SourceConfig.of, sources):
        backbone = get_backbone(src.backbone, layers=list(src.layers))
        out.append((src, backbone.to(device)))
    return out


def drop_structure_sources(sources: Sequence[Any], where: str = "the data") -> tuple[list[Any], list[SourceConfig]]:
    """``(kept sources as given, dropped SourceConfigs)`` for proteins without structures: every structure-level
    backbone is left out (one log line names them); none left is a one-line :class:`ConfigError`."""
    from pa_geo.backbones.base import get_backbone

    kept, dropped = [], []
    for source in sources:
        cfg = SourceConfig.of(source)
        if get_backbone(cfg.backbone, layers=list(cfg.layers)).level == "structure":
            dropped.append(cfg)
        else:
            kept.append(source)
    if dropped:
        LOG.warning("%s has no structures: leaving out the structure level (%s); the model uses %s alone", where,
                    ", ".join(f"{s.backbone} layer(s) {', '.join(map(str, s.layers))}" for s in dropped),
                    ", ".join(SourceConfig.of(s).backbone for s in kept) or "nothing")
    if not kept:
        raise ConfigError(f"{where} has no structures and every embedding source is structure-level "
                          f"({', '.join(s.backbone for s in dropped)}); add a sequence backbone")
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
