"""Shared by the tests of the shipped models: one embedding cache for the session, and the 50 independent chains
predicted once per model through ``pa-geo predict``'s path."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from pa_geo.train.predict import PredictSummary, predict_from_checkpoint
from tests.helpers.pretrained import PDB_DSSP, require


@pytest.fixture(scope="session")
def pretrained_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding cache shared by every test of the shipped models (each protein embedded once)."""
    return tmp_path_factory.mktemp("pretrained_cache")


@pytest.fixture(scope="session")
def independent_predictions(pretrained_cache: Path, tmp_path_factory: pytest.TempPathFactory
                            ) -> Callable[[str], tuple[pd.DataFrame, PredictSummary]]:
    """``predict(name) -> (rows, summary)`` of the 50 ``data/pdb_dssp`` chains with the shipped model ``name``
    (computed once per model and session)."""
    done: dict[str, tuple[pd.DataFrame, PredictSummary]] = {}
    out = tmp_path_factory.mktemp("independent")

    def predict(name: str) -> tuple[pd.DataFrame, PredictSummary]:
        if name not in done:
            csv = out / f"{name}.csv"
            summary = predict_from_checkpoint(require(name), sorted(PDB_DSSP.glob("*.pdb.gz")), csv,
                                              cache=str(pretrained_cache), progress=False)
            done[name] = (pd.read_csv(csv, keep_default_na=False, dtype={"id": str, "chain": str}), summary)
        return done[name]

    return predict
