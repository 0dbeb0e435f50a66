"""``pa-geo fit | validate | test | predict --config configs/<task>.yaml``: LightningCLI over PaGeoModule and
PaGeoDataModule. User errors (a missing file, an unknown name, embeddings not cached) end in one line and exit 1."""
from __future__ import annotations

import sys
from typing import Any

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from pa_geo.errors import PaGeoError
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.module import PaGeoModule

SUBCOMMANDS = ("fit", "validate", "test", "predict")


class PaGeoCLI(LightningCLI):
    """LightningCLI with ``data.task`` linked into ``model.task`` (the task is named once, under ``data``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.task", "model.task")


def build_cli(args: list[str] | dict[str, Any] | None = None, run: bool = True, **kwargs: Any) -> PaGeoCLI:
    """The CLI object: ``run=False`` parses ``args`` (no subcommand) and instantiates model, data and trainer."""
    defaults: dict[str, Any] = dict(
        subclass_mode_model=False, subclass_mode_data=False, seed_everything_default=0,
        save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "pa-geo"} if run else {},
    )
    defaults.update(kwargs)
    return PaGeoCLI(PaGeoModule, PaGeoDataModule, args=args, run=run, **defaults)


def main(argv: list[str] | None = None) -> int:
    """Run a LightningCLI subcommand (``argv[0]`` in fit/validate/test/predict); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "fit"
    try:
        # LightningCLI warns when given args while sys.argv has some: hand it none when they are the same
        build_cli(None if argv == sys.argv[1:] else argv)
    except PaGeoError as err:
        print(f"pa-geo {command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse / jsonargparse usage errors (already printed)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except KeyboardInterrupt:
        print(f"pa-geo {command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
