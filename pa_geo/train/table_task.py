"""``data.table``: a label table registered as a task on the fly, for the CLI, the data module and the model.

* :func:`register_table_task` opens the table (:class:`~pa_geo.datasets.table.LabelTable`) and registers its spec
  under the config's ``data.task`` name; opening the same table with the same settings again reuses it.
* :func:`prepare_table_config` (the CLI, before anything is built) does that, writes the spec into
  ``model.task_spec`` (so checkpoints rebuild the task without the table) and, when the table has no structures,
  drops the structure-level embedding sources and their adapter levels (one log line).
* :func:`resolve_task` (the model) gets the spec from the registry, or rebuilds it from ``task_spec``.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from pa_geo.cache.ensure import drop_structure_sources
from pa_geo.datasets.table import LabelTable, TableSettings
from pa_geo.errors import ConfigError
from pa_geo.graphs.schema import embedding_field
from pa_geo.tasks.registry import TASKS, get_task, register_task
from pa_geo.tasks.spec import TaskSpec
from pa_geo.tasks.table import settings_record, spec_from_record, spec_record, table_task_spec

LOG = logging.getLogger(__name__)
_OPEN: dict[str, LabelTable] = {}  # table tasks opened in this process, by task name
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
    table = LabelTable(settings)
    spec = table_task_spec(table, name)
    register_task(spec, overwrite=True)
    _OPEN[name] = table
    return spec


def exclude_proteins(name: str, refused: list[tuple[str, str, str]]) -> bool:
    """Skip the rows of table task ``name`` whose proteins were refused (``(backbone, protein id, reason)``), when
    it is a table opened with ``skip_bad``; returns whether it did."""
    table = _OPEN.get(name)
    if table is None or not table.settings.skip_bad:
        return False
    table.exclude({pid: f"{backbone} refused it: {reason}" for backbone, pid, reason in refused})
    return True


def resolve_task(name: str, task_spec: Mapping[str, Any] | None) -> TaskSpec:
    """The model's task: the registered spec ``name``; with ``task_spec`` (a table task, or a checkpoint loaded
    without its table) the spec it describes, registered when the registry holds no such spec, so the rest of the
    process finds it by name."""
    if task_spec is None:
        return get_task(name)  # registered, or a one-line "unknown task" error
    if name in TASKS and _same(spec_record(get_task(name)), task_spec):
        return get_task(name)  # the one the CLI registered from the table (with its loader)
    spec = spec_from_record(dict(task_spec))
    if spec.name != name:
        raise ConfigError(f"model.task {name!r} does not match model.task_spec (task {spec.name!r})")
    register_task(spec, overwrite=True)
    return get_task(name)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def canon(x: Mapping[str, Any]) -> str:
        return json.dumps(x, sort_keys=True, default=str)
    return canon(a) == canon(b)


def prepare_table_config(data: Any, model: Any) -> TaskSpec | None:
    """CLI hook on the parsed config (``data`` / ``model`` namespaces) before anything is built: register the
    table task, store its spec in ``model.task_spec``, drop structure-level sources when there are no structures.
    Returns the spec (None when ``data.table`` is not set)."""
    table = getattr(data, "table", None)
    if not table:
        given = [k for k in ("level", "type") if getattr(data, k, None) is not None]
        if given:
            raise ConfigError(f"data.{' and data.'.join(given)} describe a label table, but data.table is not set: "
                              f"give --data.table <your table: .csv, .tsv or .parquet>")
        return None
    spec = register_table_task(str(data.task), table_settings(str(table), vars(data)))
    model.task_spec = spec_record(spec)
    if not spec.options["has_structures"]:
        data.embeddings, dropped = drop_structure_sources(list(data.embeddings or []), str(table))
        _drop_levels(model, {embedding_field(s.backbone, layer) for s in dropped for layer in s.layers})
    return spec


def _drop_levels(model: Any, fields: set[str]) -> None:
    """Remove ``fields`` from every ``levels`` mapping of the model config (a jsonargparse ``Namespace``: adapter or
    baseline levels, wherever they are nested)."""
    for key, value in list(model.items()):
        if key.rsplit(".", 1)[-1] == "levels" and isinstance(value, Mapping):
            model[key] = {k: v for k, v in value.items() if k not in fields}
