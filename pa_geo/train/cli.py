"""``pa-geo fit | validate | test | predict --config configs/<task>.yaml``: LightningCLI over PaGeoModule and
PaGeoDataModule. User errors (a missing file, an unknown name, embeddings not cached) end in one line and exit 1.

Configs compose: later ``--config`` files override earlier ones, and a config file may name the files it builds on,
``extends: <file>`` or ``extends: [<file>, ...]`` (relative to it): :func:`expand_extends` turns ``--config X`` into
``--config <bases of X, recursively> --config X``. Conventions keep the shared blocks (``configs/base/``) task-free:
``{task}`` in ``trainer.default_root_dir`` is ``data.task``; ``{run_dir}`` in a logger / callback argument is
``trainer.default_root_dir``; a ``ModelCheckpoint`` with ``monitor: null`` monitors the task's primary metric
(``val/<metric>``, ``mode`` from ``higher_is_better``).

What follows from the data is taken from the data module, built first and once (:meth:`PaGeoCLI.
before_instantiate_classes`): the encoder's ``levels`` (and ``sequence_levels: sequence``) wherever the config leaves
them out (:mod:`pa_geo.train.levels`), and a label table's task (``model.task_spec``).
"""
from __future__ import annotations

import importlib
import logging
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml
from jsonargparse import Namespace
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from pa_geo.datasets.embedded import EMBED_FOR_CONFIG
from pa_geo.errors import ConfigError, PaGeoError
from pa_geo.tables import TableSettings
from pa_geo.train.checkpoints import check_ckpt_path, replaced_settings
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.levels import drop_geometric_bias, fill_levels
from pa_geo.train.module import PaGeoModule

log = logging.getLogger(__name__)

SUBCOMMANDS = ("fit", "validate", "test", "predict")
RUN_DIR = "{run_dir}"
TASK = "{task}"
# options of the Lightning subcommands that the data module does not take (each followed by one value)
SUBCOMMAND_OPTIONS = ("--ckpt_path", "--verbose", "--return_predictions")


def _config_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    if path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself ({' -> '.join(map(str, seen + (path,)))})")
    bases: Any = None
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
        bases = loaded.get("extends") if isinstance(loaded, dict) else None
    chain: list[str] = []
    for base in [bases] if isinstance(bases, str) else list(bases or []):
        target = (path.parent / base).resolve()
        if not target.is_file():
            raise ConfigError(f"{path}: extends {base!r}, but {target} does not exist")
        chain += _config_chain(target, seen + (path,))
    return chain + ["--config", str(path)]


def expand_extends(argv: list[str]) -> list[str]:
    """``--config X`` -> ``--config <what X extends, recursively> --config X`` (also ``--config=X`` / ``-c X``)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "-c") and i + 1 < len(argv):
            out += _config_chain(Path(argv[i + 1]))
            i += 2
            continue
        if arg.startswith("--config="):
            out += _config_chain(Path(arg.split("=", 1)[1]))
        else:
            out.append(arg)
        i += 1
    return out


def _fill_run_dir(value: Any, run_dir: str) -> Any:
    """Replace ``{run_dir}`` in every string inside ``value`` (namespaces, dicts, lists)."""
    if isinstance(value, str):
        return value.replace(RUN_DIR, run_dir)
    if isinstance(value, Namespace):
        for key in list(vars(value)):
            setattr(value, key, _fill_run_dir(getattr(value, key), run_dir))
        return value
    if isinstance(value, dict):
        return {k: _fill_run_dir(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_run_dir(v, run_dir) for v in value]
    return value


def _class_of(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def datamodule_from_config(data: Namespace) -> PaGeoDataModule:
    """The data module of a parsed ``data`` group (``data.table`` as :class:`~pa_geo.tables.TableSettings`)."""
    kwargs = data.as_dict() if isinstance(data, Namespace) else dict(data)
    table = kwargs.get("table")
    if isinstance(table, dict):
        kwargs["table"] = TableSettings(**table.get("init_args", table))
    return PaGeoDataModule(**kwargs)


class PaGeoCLI(LightningCLI):
    """LightningCLI with ``data.task`` linked into ``model.task`` (the task is named once, under ``data``), the
    ``{task}`` / ``{run_dir}`` placeholders, task-derived checkpoint monitors and what the model takes from the data
    module (see the module docstring)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.task", "model.task")
        parser.add_argument("--extends", type=Optional[Union[str, list[str]]], default=None,
                            help="config files a config file builds on (expanded by pa-geo before parsing)")

    def _parse_ckpt_path(self) -> None:
        """Check a ``--ckpt_path`` file (one line when it is missing, damaged or not a checkpoint) before
        LightningCLI reads its hyper-parameters. Those replace the config's model settings (the checkpoint's weights
        fit only its own encoder and heads): a note on stderr names every setting replaced."""
        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        if not check_ckpt_path(path):
            return super()._parse_ckpt_path()
        before = self.config[sub].model.as_dict()
        super()._parse_ckpt_path()
        replaced = replaced_settings(before, self.config[sub].model.as_dict())
        if replaced:
            print(f"pa-geo {sub}: note: {path}: the model is built as it was trained, not as the config says: "
                  f"model.{replaced.replace('; ', '; model.')}", file=sys.stderr)

    def before_instantiate_classes(self) -> None:
        """Fill the placeholders, build the data module (once: the parser hands this one on), and complete the
        model config from it: ``task_spec`` of a label table, the encoder's levels where the config leaves them
        out, the checkpoint monitors."""
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        cfg.extends = None  # already expanded: the saved config is complete on its own
        trainer = cfg.trainer
        trainer.default_root_dir = str(trainer.default_root_dir or ".").replace(TASK, str(cfg.data.task))
        for group in ("logger", "callbacks"):
            setattr(trainer, group, _fill_run_dir(getattr(trainer, group), trainer.default_root_dir))
        data = self.built_datamodule = datamodule_from_config(cfg.data)
        if data.task_spec_record is not None:
            cfg.model.task_spec = data.task_spec_record
        fill_levels(cfg.model, data.levels)
        self.parser.add_instantiator(lambda cls, *args, **kwargs: data, PaGeoDataModule, subclasses=False,
                                     prepend=True)
        spec = data.specs[data.task]
        if not spec.has_structures and drop_geometric_bias(cfg.model):
            log.info("%s has no coordinates: the adapter's geometric attention bias is switched off", data.task)
        for cb in trainer.callbacks or []:
            if isinstance(cb, Namespace) and issubclass(_class_of(str(cb.class_path)), ModelCheckpoint):
                args = cb.init_args
                if getattr(args, "monitor", None) is None:
                    args.monitor = f"val/{spec.primary_metric}"
                    args.mode = "max" if spec.higher_is_better else "min"


def build_cli(args: list[str] | dict[str, Any] | None = None, run: bool = True, cli_class: type[PaGeoCLI] = PaGeoCLI,
              **kwargs: Any) -> PaGeoCLI:
    """The CLI object: ``run=False`` parses ``args`` (no subcommand) and instantiates model, data and trainer.
    ``extends`` in config files is expanded (:func:`expand_extends`), also for ``args=None`` (``sys.argv``)."""
    if args is None:
        sys.argv[1:] = expand_extends(sys.argv[1:])
    elif isinstance(args, list):
        args = expand_extends(args)
    defaults: dict[str, Any] = dict(
        subclass_mode_model=False, subclass_mode_data=False, seed_everything_default=0,
        save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "pa-geo"} if run else {},
    )
    defaults.update(kwargs)
    with warnings.catch_warnings():  # args given on purpose (the program's own, extends expanded): not a mistake
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return cli_class(PaGeoModule, PaGeoDataModule, args=args, run=run, **defaults)


_WORKER = re.compile(r"^Caught (\w+) in DataLoader worker process \d+\.\s*Original Traceback", re.S)


def _worker_pa_geo_error(err: BaseException) -> bool:
    """A ``RuntimeError`` torch raised for a PaGeoError from a DataLoader worker that it could not rebuild (a class
    whose constructor takes other arguments, e.g. ``StructureError(source, reason)``)."""
    found = _WORKER.match(str(err))
    return found is not None and any(cls.__name__ == found.group(1) for cls in _subclasses(PaGeoError))


def _subclasses(cls: type) -> list[type]:
    return [cls] + [s for c in cls.__subclasses__() for s in _subclasses(c)]


def one_line(err: BaseException) -> str:
    """The one-line message of a :class:`PaGeoError`, also when it crossed a DataLoader worker: torch rebuilds it
    there as ``type("Caught X in DataLoader worker process N. Original Traceback ...")`` (or a ``RuntimeError`` of
    that text), whose last traceback line is ``module.X: <the original message>``."""
    text = str(err)
    found = _WORKER.match(text)
    if found:
        last = text.rstrip().splitlines()[-1]
        name = f"{found.group(1)}: "
        text = last.split(name, 1)[1] if name in last else last
    return " ".join(text.split())


def run_guarded(command: str, fn: Callable[[], int | None], advise: Callable[[str], str] | None = None) -> int:
    """Run ``fn``; a :class:`PaGeoError` (also from a DataLoader worker) is one line on stderr and exit code 1,
    usage errors keep their code, Ctrl-C is 130. ``advise`` may rewrite the line (the run's own commands)."""
    try:
        return int(fn() or 0)
    except (PaGeoError, RuntimeError) as err:
        if not isinstance(err, PaGeoError) and not _worker_pa_geo_error(err):
            raise
        line = one_line(err)
        print(f"pa-geo {command}: error: {advise(line) if advise else line}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse / jsonargparse usage errors (already printed)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except KeyboardInterrupt:
        print(f"pa-geo {command}: interrupted", file=sys.stderr)
        return 130


def embed_arguments(argv: list[str]) -> list[str]:
    """``pa-geo <subcommand> ARGS`` -> the ``pa-geo embed`` arguments that embed what it reads: ``ARGS`` without the
    subcommand and its own options (``--ckpt_path X`` / ``--ckpt_path=X`` ...)."""
    args = list(argv[1:] if argv and not argv[0].startswith("-") else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        name = args[i].split("=", 1)[0]
        if name in SUBCOMMAND_OPTIONS:
            i += 1 if "=" in args[i] else 2
            continue
        out.append(args[i])
        i += 1
    return out


def embed_command(argv: list[str]) -> str:
    """The shell command that fills the cache for the run ``pa-geo <argv>``."""
    return "pa-geo embed " + shlex.join(embed_arguments(argv))


def _advice_for(argv: list[str]) -> Callable[[str], str]:
    """Put the run's own ``pa-geo embed --config ...`` command where an error says ``pa-geo embed --config <your
    config>`` (the embedding errors cannot know the config they were read for)."""
    def advise(line: str) -> str:
        at = line.find(EMBED_FOR_CONFIG)
        if at < 0:
            return line
        return f"{line[:at]}{embed_command(argv)} (or add --data.embed_missing true to the command)"

    return advise


def main(argv: list[str] | None = None) -> int:
    """Run a LightningCLI subcommand (``argv[0]`` in fit/validate/test/predict); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "fit"
    # LightningCLI warns when given args while sys.argv has some: hand it none when they are the same
    return run_guarded(command, lambda: build_cli(None if argv == sys.argv[1:] else argv) and 0,
                       _advice_for(argv))


if __name__ == "__main__":
    sys.exit(main())
