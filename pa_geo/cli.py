"""``pa-geo`` command line: one subcommand per pipeline entry point, each implemented next to its stage.

Subcommands
    inspect   validate structure files / ATOM3D LMDBs before long runs     (pa_geo.io.inspect_cli)
    embed     run a frozen backbone once per protein into the cache       (pa_geo.cache.embed_cli)
              embed --config X: everything training config X reads         (pa_geo.train.embed_config)
    cache     verify / repair an embedding cache                           (pa_geo.cache.cache_cli)
    demo      the main job on the embedded default data                    (pa_geo.demo.run)
    fit | validate | test | predict   LightningCLI over configs/*.yaml       (pa_geo.train.cli)
    predict --ckpt_path X --input FILES --output CSV   from a checkpoint alone (pa_geo.train.predict)
    predict --pretrained NAME --input FILES --output CSV   a model shipped with the package (pa_geo.pretrained)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable

from pa_geo.errors import PaGeoError
from pa_geo.train.notices import silence_known_notices

# subcommand -> (module, one-line help). Each module exposes add_arguments(parser) and run(args) -> int.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("pa_geo.io.inspect_cli", "validate structure files or ATOM3D LMDB directories"),
    "embed": ("pa_geo.cache.embed_cli", "embed proteins with a frozen backbone into the LMDB cache"),
    "cache": ("pa_geo.cache.cache_cli", "verify an embedding cache, or repair it keeping every readable entry"),
    "demo": ("pa_geo.demo.run", "train the adapter and baselines on the shipped real data"),
}
_LIGHTNING = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pa-geo`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _show_progress_notes()
    silence_known_notices()
    if argv[:1] == ["predict"] and _pretrained(argv[1:]):
        return _predict_pretrained(argv[1:])
    if argv[:1] == ["predict"] and _from_checkpoint(argv[1:]):
        return _predict_from_checkpoint(argv[1:])
    if argv and argv[0] in _LIGHTNING:
        from pa_geo.train.cli import main as lightning_main  # torch-heavy: only for these subcommands

        return lightning_main(argv)
    if argv[:1] == ["embed"] and any(a in ("--config", "-c") or a.startswith("--config=") for a in argv[1:]):
        from pa_geo.train.embed_config import main as embed_config_main  # as above

        return embed_config_main(argv[1:])
    parser = argparse.ArgumentParser(prog="pa-geo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="{inspect,embed,cache,demo,fit,validate,test,predict}")
    chosen = argv[0] if argv else None
    for name, (module, help_) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_)
        p.set_defaults(_module=module)
        if name == chosen:  # import only the chosen stage: `inspect` must not pay for torch-heavy training code
            importlib.import_module(module).add_arguments(p)
    for name in _LIGHTNING:
        sub.add_parser(name, help=f"LightningCLI {name} --config configs/<task>.yaml", add_help=False)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except PaGeoError as err:
        print(f"pa-geo {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pa-geo {args.command}: interrupted", file=sys.stderr)
        return 130


def _show_progress_notes() -> None:
    """pa_geo's INFO log lines (a split made and where it was written, embeddings computed / cached) on stderr."""
    log = logging.getLogger("pa_geo")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _from_checkpoint(args: list[str]) -> bool:
    """``pa-geo predict --ckpt_path X --input ...`` (no ``--config``): predict files from a checkpoint alone."""
    has = {a.split("=", 1)[0] for a in args}
    return "--input" in has and not has & {"--config", "-c"}


def _pretrained(args: list[str]) -> bool:
    """``pa-geo predict --pretrained NAME ...`` or ``--list-pretrained``: a model shipped with the package."""
    return bool({a.split("=", 1)[0] for a in args} & {"--pretrained", "--list-pretrained"})


def _predict_pretrained(args: list[str]) -> int:
    from pa_geo.pretrained import predict_cli  # torch-heavy: only for this subcommand

    parser = argparse.ArgumentParser(prog="pa-geo predict", description=predict_cli.__doc__.splitlines()[0])
    predict_cli.add_arguments(parser)
    return _guarded(lambda: predict_cli.run(parser.parse_args(args)))


def _predict_from_checkpoint(args: list[str]) -> int:
    from pa_geo.train import predict  # torch-heavy: only for this subcommand

    parser = argparse.ArgumentParser(prog="pa-geo predict", description=predict.__doc__.splitlines()[0])
    predict.add_arguments(parser)
    parsed = parser.parse_args(args)
    return _guarded(lambda: predict.run(parsed))


def _guarded(fn: Callable[[], int]) -> int:
    """``pa-geo predict``'s exit code: a :class:`PaGeoError` is one line on stderr and 1, Ctrl-C 130."""
    try:
        return fn()
    except PaGeoError as err:
        print(f"pa-geo predict: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pa-geo predict: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
