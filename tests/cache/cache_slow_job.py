"""Subprocess body for the crash-safety test: embed ``n`` proteins with a slow backbone, one small batch at a time.

usage: python cache_slow_job.py CACHE_DIR N DELAY   (prints the summary as ``embedded cached refused``)
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[2])]

from cache_testkit import SlowBackbone, random_proteins  # noqa: E402
from pa_geo.cache.runner import embed_proteins  # noqa: E402

if __name__ == "__main__":
    cache, n, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    s = embed_proteins(SlowBackbone(delay=delay), random_proteins(n, lo=20, hi=30, seed=7), cache,
                       batch_tokens=60, progress=False)
    print(s.embedded, s.cached, len(s.refused), flush=True)
