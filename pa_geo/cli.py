"""``pa-geo`` command line: one subcommand per pipeline entry point, each implemented next to its stage.

Subcommands
    inspect   validate structure files / ATOM3D LMDBs before long runs     (pa_geo.io.inspect_cli)
    embed     run a frozen backbone once per protein into the cache       (pa_geo.cache.embed_cli)
              embed --config X: everything training config X reads         (pa_geo.train.embed_config)
    cache     verify / repair an embedding cache                           (pa_geo.cache.cache_cli)
    demo      the main job on the embedded default data                    (pa_geo.demo.run)
    fit | validate | test | predict   LightningCLI over configs/*.yaml       (pa_geo.train.cli)
"""
from __future__ import annotations

import argparse
import importlib
import sys

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
    if argv and argv[0] in _LIGHTNING:
        import pa_geo.demo  # noqa: F401 - the program's task set includes the demo tasks (configs/demo_*.yaml)
        from pa_geo.train.cli import main as lightning_main

        return lightning_main(argv)
    if argv[:1] == ["embed"] and any(a in ("--config", "-c") or a.startswith("--config=") for a in argv[1:]):
        import pa_geo.demo  # noqa: F401 - as above: a training config may name a demo task
        from pa_geo.train.embed_config import main as embed_config_main

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
    from pa_geo.errors import PaGeoError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except PaGeoError as err:
        print(f"pa-geo {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pa-geo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
