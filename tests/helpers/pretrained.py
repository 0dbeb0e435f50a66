"""The shipped models in tests: their checkpoints (a test skips, saying why, while a file is not in the package
yet) and a CA-only copy of a real PDB file."""
from __future__ import annotations

import gzip
from pathlib import Path

from pa_geo.pretrained import get_model
from tests.helpers import DATA, TEST_DATA

PDB_DSSP = DATA / "pdb_dssp"
__all__ = ["PDB_DSSP", "TEST_DATA", "ca_only_copy", "require"]


def require(name: str) -> Path:
    """The shipped checkpoint of ``name``; the test is skipped (with the reason) when it is not in the package."""
    import pytest  # only here: the helpers import without pytest (benchmarks)

    entry = get_model(name)
    if not entry.installed:
        pytest.skip(f"{entry.checkpoint.name} is not in pa_geo/pretrained/checkpoints yet (scripts/train_pretrained.py "
                    f"--ship writes it)")
    return entry.checkpoint


def ca_only_copy(source: Path, folder: Path, name: str | None = None) -> Path:
    """``source`` (PDB, plain or .gz) with only its CA ATOM records (other records kept), written to ``folder``."""
    text = gzip.open(source, "rt").read() if source.suffix == ".gz" else source.read_text()
    keep = [ln for ln in text.splitlines() if not ln.startswith("ATOM") or ln[12:16] == " CA "]
    path = folder / (name or f"{source.name.split('.')[0]}_ca.pdb")
    path.write_text("\n".join(keep) + "\n")
    return path
