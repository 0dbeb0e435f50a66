"""Helpers for tests and benchmarks, importable without pytest (``pytest`` is imported only inside the functions
that skip). Nothing else in pa_geo imports this package (``tests/test_layering.py``).

Data: :mod:`~pa_geo.testing.formats` (tiny datasets in every released format), :mod:`~pa_geo.testing.atom3d`,
:mod:`~pa_geo.testing.tables`, :mod:`~pa_geo.testing.caches` (embedding caches of random vectors),
:mod:`~pa_geo.testing.proteins` (real and random proteins), :mod:`~pa_geo.testing.nn_graphs` (real-size graphs),
:mod:`~pa_geo.testing.structure_fuzz` (seeded mutations of structure files).
Models: :mod:`~pa_geo.testing.esm_models` / :mod:`~pa_geo.testing.hf_models` (random fair-esm and Hugging Face
checkpoints), :mod:`~pa_geo.testing.backbones` (registered test backbones),
:mod:`~pa_geo.testing.proteinmpnn_reference` (ProteinMPNN's own forward, hooked).
Training: :mod:`~pa_geo.testing.training` (test tasks on real chains, CLI configs), :mod:`~pa_geo.testing.resume`.
Subprocess programs (``python -m pa_geo.testing.<name>``): ``embed_job``, ``ddp_job``, ``resume``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the source checkout (tests/data is not shipped in the wheel)
TEST_DATA = REPO / "tests" / "data"


def subprocess_env(**extra: str) -> dict[str, str]:
    """``os.environ`` for a child Python that must import this same checkout's pa_geo (``PYTHONPATH`` = the
    checkout, ahead of an editable install pointing elsewhere), one OpenMP thread, plus ``extra``."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}
