"""The encoder's levels, derived from the data module: every ``data.embeddings`` source the task reads gives one node
field per layer (``emb_<backbone>_<layer>``) whose width the backbone declares
(:meth:`~pa_geo.backbones.base.Backbone.layer_widths`), and ``data.extra_levels`` adds node fields that are not
embeddings (a per-residue feature field of the graph recipe): a list of field names whose widths the graph schema
declares (``[geom]``, :data:`pa_geo.graphs.schema.FIELD_WIDTHS`), or ``{field: width}`` (a width of None = the
declared one). The CLI writes them into the
model config wherever it leaves them out (:func:`fill_levels`), so a config names its backbones once, in
``data.embeddings``, and switching backbones is one ``--config configs/embeddings/<name>.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence, Union

from jsonargparse import Namespace

from pa_geo.backbones.base import BACKBONES
from pa_geo.cache.ensure import SourceConfig
from pa_geo.errors import ConfigError
from pa_geo.graphs.schema import FIELD_WIDTHS, embedding_field

EXTRA = "extra"  # the origin of a level that is not an embedding


@dataclass(frozen=True)
class Level:
    """One node field an encoder reads: its name, width ``D`` and origin (``sequence`` / ``structure``: a
    backbone's level; ``extra``: a field of the graph)."""

    field: str
    width: int
    origin: str


def embedding_levels(sources: Sequence[SourceConfig]) -> list[Level]:
    """One level per (source, layer), in ``data.embeddings`` order."""
    out = []
    for src in sources:
        widths = BACKBONES.get(src.backbone).layer_widths(list(src.layers), **src.options)
        out += [Level(embedding_field(src.backbone, layer), int(widths[layer]), src.level) for layer in src.layers]
    return out


ExtraLevels = Union[Mapping[str, Union[int, None]], Sequence[str], None]


def field_levels(extra: ExtraLevels) -> list[Level]:
    """``data.extra_levels`` as levels: a list of field names (widths from
    :data:`~pa_geo.graphs.schema.FIELD_WIDTHS`) or ``{field: width or None}``. A name that is not a field name, a
    width below 1, a name without a declared width and no width given, or a name twice is a one-line ConfigError."""
    if extra is None:
        return []
    if isinstance(extra, str):
        extra = [extra]
    items = list(extra.items()) if isinstance(extra, Mapping) else [(name, None) for name in extra]
    out: list[Level] = []
    for name, width in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"data.extra_levels: {name!r} is not a node field name")
        if width is None:
            if name not in FIELD_WIDTHS:
                known = ", ".join(sorted(FIELD_WIDTHS))
                raise ConfigError(f"data.extra_levels: field {name!r} has no width declared by the graph schema "
                                  f"(declared: {known}); give it as {{{name}: <width>}}")
            width = FIELD_WIDTHS[name]
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"data.extra_levels: {name!r}: {width!r} must be a node field name and a width >= 1")
        if any(lv.field == name for lv in out):
            raise ConfigError(f"data.extra_levels: field {name!r} is listed twice")
        out.append(Level(name, int(width), EXTRA))
    return out


def as_levels(levels: Sequence[Level], origin: str | None = None) -> dict[str, int]:
    """``{field: width}`` of ``levels`` (those of ``origin`` only, when given)."""
    return {lv.field: lv.width for lv in levels if origin is None or lv.origin == origin}


def _class_configs(config: Any) -> Iterator[tuple[str, Namespace]]:
    """``(class_path, init_args)`` of every class config inside ``config`` (jsonargparse namespaces, dicts, lists),
    outer ones first."""
    if isinstance(config, Namespace):
        args = config.get("init_args") if "class_path" in config else None
        if isinstance(args, Namespace):
            yield str(config.class_path), args
        for key in list(vars(config)):
            yield from _class_configs(config[key])
    elif isinstance(config, Mapping):
        for value in config.values():
            yield from _class_configs(value)
    elif isinstance(config, list):
        for value in config:
            yield from _class_configs(value)


def fill_levels(config: Any, levels: Sequence[Level]) -> None:
    """In every class config inside ``config`` (jsonargparse namespaces, dicts, lists): ``levels`` left unset (None)
    becomes :func:`as_levels` of ``levels``, and ``sequence_levels: sequence`` the fields of sequence backbones."""
    for class_path, args in _class_configs(config):
        if "levels" in args and args.levels is None:
            args.levels = as_levels(levels)
        if args.get("sequence_levels") == "sequence":
            chosen = as_levels(levels, "sequence")
            if not chosen:
                raise ConfigError(f"{class_path}: sequence_levels: sequence, but data.embeddings names no "
                                  f"sequence backbone the task reads")
            args.sequence_levels = chosen


def drop_geometric_bias(config: Any) -> list[str]:
    """In every class config inside ``config``: ``geometric_bias: true`` becomes false, for a task whose proteins
    have no coordinates (a sequence-only label table or dataset), where the bias would read no distance. Returns the
    class paths switched (for the log line)."""
    switched: list[str] = []
    for class_path, args in _class_configs(config):
        if args.get("geometric_bias") is True:
            args.geometric_bias = False
            switched.append(class_path)
    return switched
