"""Subprocess body for the crash-safety test: embed ``n`` random proteins with the slow test backbone, one small
batch at a time.

usage: python -m tests.helpers.embed_job CACHE_DIR N DELAY   (prints the summary as ``embedded cached refused``)
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Embed ``argv[1]`` proteins (20-30 residues, seed 7) into cache ``argv[0]``, ``argv[2]`` s per batch."""
    from pa_geo.cache.runner import embed_proteins
    from tests.helpers.backbones import SlowBackbone
    from tests.helpers.proteins import random_proteins

    cache, n, delay = argv[0], int(argv[1]), float(argv[2])
    s = embed_proteins(SlowBackbone(delay=delay), random_proteins(n, lo=20, hi=30, seed=7), cache,
                       batch_tokens=60, progress=False)
    print(s.embedded, s.cached, len(s.refused), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
