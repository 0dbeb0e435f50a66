"""``data.table``: a label table registered as a task on the fly, for the CLI, the data module and the model.

* :func:`register_table_task` opens the table (:class:`~pa_geo.datasets.table.LabelTable`) and registers its spec
  under the config's ``data.task`` name; opening the same table with the same settings again reuses it.
* :func:`prepare_table_config` (the CLI, before anything is built) does that, writes the spec into
  ``model.task_spec`` (so checkpoints rebuild the task without the table) and, when the table has no structures,
  drops the structure-level embedding sources and their adapter levels (one log line).
* :func:`resolve_task` (the model) gets the spec from the registry, or rebuilds it from ``task_spec``.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from pa_geo.datasets.table import LabelTable, TableSettings
from pa_geo.errors import ConfigError
from pa_geo.tasks.registry import TASKS, get_task, register_task
from pa_geo.tasks.spec import TaskSpec
from pa_geo.tasks.table import settings_record, spec_from_record, spec_record, table_task_spec

LOG = logging.getLogger(__name__)
# data.* options of a table task (PaGeoDataModule arguments), each a TableSettings field
TABLE_OPTIONS: tuple[str, ...] = ("level", "type", "label_columns", "class_names", "mask_symbols", "skip_bad",
                                  "split_fractions", "split_identity", "split_coverage", "split_method", "split_seed")


def table_settings(table: str, options: Mapping[str, Any]) -> TableSettings:
    """:class:`TableSettings` of ``table`` from the ``data.*`` options present in ``options`` (None = default)."""
    given = {k: options[k] for k in TABLE_OPTIONS if options.get(k) is not None}
    if "split_fractions" in given:
        given["split_fractions"] = tuple(given["split_fractions"])
    return TableSettings(table, **given)


def register_table_task(name: str, settings: TableSettings) -> TaskSpec:
    """The spec of the table task ``name`` (opened and registered now, or the one registered with these settings).

    A name taken by a registered benchmark task is a one-line :class:`ConfigError`.
    """
    wanted = settings_record(settings)
    if name in TASKS:
        current = get_task(name)
        if "table" not in current.options:
            raise ConfigError(f"data.task {name!r} is a registered task; give the table task another name "
                              f"(--data.task my_table)")
        if current.options["table"] == wanted and current.loader is not None:
            return current
    spec = table_task_spec(LabelTable(settings), name)
    register_task(spec, overwrite=True)
    return spec


def resolve_task(name: str, task_spec: Mapping[str, Any] | None) -> TaskSpec:
    """The model's task: the registered spec ``name``, or (a checkpoint loaded without its table) the spec rebuilt
    from ``task_spec`` and registered, so the rest of the process finds it by name."""
    if name in TASKS:
        return get_task(name)
    if task_spec is None:
        return get_task(name)  # one-line "unknown task" error
    spec = spec_from_record(dict(task_spec))
    if spec.name != name:
        raise ConfigError(f"model.task {name!r} does not match model.task_spec (task {spec.name!r})")
    register_task(spec, overwrite=True)
    return get_task(name)


def prepare_table_config(data: Any, model: Any) -> TaskSpec | None:
    """CLI hook on the parsed config (``data`` / ``model`` namespaces) before anything is built: register the
    table task, store its spec in ``model.task_spec``, drop structure-level sources when there are no structures.
    Returns the spec (None when ``data.table`` is not set)."""
    table = getattr(data, "table", None)
    if not table:
        return None
    spec = register_table_task(str(data.task), table_settings(str(table), vars(data)))
    model.task_spec = spec_record(spec)
    if not spec.options["has_structures"]:
        data.embeddings, dropped = without_structure_sources(list(data.embeddings or []), str(table))
        fields = {f"emb_{s['backbone']}_{layer}" for s in dropped for layer in _layers(s)}
        _drop_levels(model, fields)
    return spec


def _layers(source: Mapping[str, Any]) -> list[Any]:
    layers = source.get("layers")
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def without_structure_sources(embeddings: list[Mapping[str, Any]], where: str) -> tuple[list[Any], list[Any]]:
    """``(kept, dropped)`` embedding sources: the structure-level ones are dropped (one log line names them)."""
    from pa_geo.backbones.base import get_backbone

    kept, dropped = [], []
    for source in embeddings:
        level = get_backbone(str(source["backbone"]), layers=_layers(source)).level
        (dropped if level == "structure" else kept).append(source)
    if dropped:
        LOG.warning("%s has no structures: leaving out the structure level (%s); the model uses %s alone", where,
                    ", ".join(f"{s['backbone']} layer {', '.join(map(str, _layers(s)))}" for s in dropped),
                    ", ".join(str(s["backbone"]) for s in kept) or "nothing")
    if not kept:
        raise ConfigError(f"{where} has no structures and every data.embeddings source is structure-level; add a "
                          f"sequence backbone")
    return kept, dropped


def _drop_levels(node: Any, fields: set[str]) -> None:
    """Remove ``fields`` from every ``levels`` mapping inside the model config (adapter / baseline levels)."""
    items = vars(node).items() if hasattr(node, "__dict__") and not isinstance(node, Mapping) else \
        node.items() if isinstance(node, Mapping) else []
    for key, value in list(items):
        if key == "levels" and isinstance(value, Mapping):
            kept = {k: v for k, v in value.items() if k not in fields}
            if isinstance(node, Mapping):
                node[key] = kept  # type: ignore[index]
            else:
                setattr(node, key, kept)
        elif isinstance(value, (Mapping, list)) or hasattr(value, "__dict__"):
            for child in (value if isinstance(value, list) else [value]):
                if isinstance(child, Mapping) or hasattr(child, "__dict__"):
                    _drop_levels(child, fields)
