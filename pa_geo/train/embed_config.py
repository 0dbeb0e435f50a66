"""``pa-geo embed --config configs/<task>.yaml [--data.* ...]``: fill the embedding cache with what a training config
reads: every protein of every split of its task(s), with every backbone and layer of its ``data.embeddings``.

This is the command the "embeddings missing" errors of ``pa-geo fit | validate | test | predict`` print, with the
failing command's own config files and overrides: it takes the same arguments (``extends`` expanded, overrides
applied; the subcommand's own options such as ``--ckpt_path`` left out) and builds only the data module.
What is already cached is skipped, so it is cheap to rerun. ``--data.embed_missing true`` on the training command
does the same before training; this command embeds without training (a large job on its own, another machine).
"""
from __future__ import annotations

from pa_geo.train.cli import PaGeoCLI, build_cli, run_guarded


class _DataOnlyCLI(PaGeoCLI):
    """The training CLI's parser (same configs, same overrides) building only the data module."""

    def instantiate_classes(self) -> None:
        self.datamodule = self.built_datamodule


def embed_for_config(args: list[str], progress: bool = True) -> int:
    """Embed every protein the config in ``args`` reads (all splits) that its caches lack
    (``PaGeoDataModule.embed``: the same streaming embed as ``--data.embed_missing true``, which logs one line per
    backbone). A protein a backbone refuses is one line (``DatasetError``). Returns 0."""
    cli = build_cli(args, run=False, cli_class=_DataOnlyCLI, parser_kwargs={"prog": "pa-geo embed"})
    dm = cli.datamodule
    if not dm.embeddings:
        print(f"{dm.task}: the config names no data.embeddings; nothing to embed")
        return 0
    dm.embed(progress=progress)  # logs one line per backbone: embedded, already cached, refused
    return 0


def main(args: list[str]) -> int:
    """``pa-geo embed --config ...`` (``args`` after ``embed``); ``--no-progress`` hides the progress bars."""
    progress = "--no-progress" not in args
    rest = [a for a in args if a != "--no-progress"]
    return run_guarded("embed", lambda: embed_for_config(rest, progress=progress))

