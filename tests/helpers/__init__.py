"""What the tests (and the benchmarks) share, imported as ``tests.helpers.<module>`` (the repository root is on
``sys.path`` under pytest: ``tests`` is a package, so pytest puts its parent there; benchmarks load this package with
``benchmarks/checkout.py``). Importable without pytest (``pytest`` is imported only inside the functions that skip).

Data: :mod:`~tests.helpers.formats` (tiny datasets in every released format), :mod:`~tests.helpers.atom3d`,
:mod:`~tests.helpers.tables`, :mod:`~tests.helpers.caches` (embedding caches of random vectors),
:mod:`~tests.helpers.proteins` (real and random proteins), :mod:`~tests.helpers.nn_graphs` (real-size graphs),
:mod:`~tests.helpers.structure_fuzz` (seeded mutations of structure files).
Models: :mod:`~tests.helpers.esm_models` / :mod:`~tests.helpers.hf_models` (random fair-esm and Hugging Face
checkpoints), :mod:`~tests.helpers.backbones` (registered test backbones),
:mod:`~tests.helpers.proteinmpnn_reference` (ProteinMPNN's own forward, hooked).
Training: :mod:`~tests.helpers.training` (test tasks on real chains, CLI configs), :mod:`~tests.helpers.resume`,
:mod:`~tests.helpers.pretrained` (the shipped models' checkpoints, CA-only copies of PDB files).
Subprocess programs (``python -m tests.helpers.<name>`` with :func:`subprocess_env`): ``embed_job``, ``ddp_job``,
``resume``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout these tests belong to
TEST_DATA = REPO / "tests" / "data"
DATA = REPO / "data"  # the shipped real data (data/README.md)
STRUCTUREDB = DATA / "structuredb_subset.npz"


def subprocess_env(**extra: str) -> dict[str, str]:
    """``os.environ`` for a child Python that runs ``python -m tests.helpers.<name>`` and imports this same checkout's
    pa_geo (``PYTHONPATH`` = the checkout, ahead of an editable install pointing elsewhere), one OpenMP thread, plus
    ``extra``."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}
