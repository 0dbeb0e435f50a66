"""README "Your own data": the shell block runs as written (a table from shipped files, fit, predict from the
checkpoint alone) in a checkout-like folder, and the output it shows is what the commands write."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def own_data_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Your own data", 1)[1].split("\n## ", 1)[0]


def test_section_has_one_shell_block_and_its_output():
    section = own_data_section()
    assert len(re.findall(r"```bash\n", section)) == 1 and len(re.findall(r"```text\n", section)) == 1
    assert "pa-geo fit --config configs/custom/residue_classification.yaml --data.table.path my/labels.csv" in section


@pytest.mark.slow
def test_own_data_section_runs_as_written(tmp_path):
    section = own_data_section()
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1).splitlines()
    for name in ("data", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT),
           "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len((tmp_path / "my" / "labels.csv").read_text().splitlines()) == 21
    assert (tmp_path / "my" / "labels.csv.split.csv").is_file()  # the split, made once, next to the table
    assert (tmp_path / ".cache" / "embeddings" / "near").is_dir()
    assert (tmp_path / ".cache" / "embeddings" / "proteinmpnn").is_dir()
    written = (tmp_path / "preds.csv").read_text().splitlines()
    assert proc.stdout.splitlines()[-4:] == written[:4]  # `head -4 preds.csv` printed the file's first lines
    assert written[0] == shown[0]
    for mine, readme in zip(written[1:4], shown[1:4]):  # same residues; the values come from a seeded CPU run
        assert mine.split(",")[:5] == readme.split(",")[:5]
    frame = pd.read_csv(tmp_path / "preds.csv", keep_default_na=False)
    from pa_geo.io import read_structure

    protein = read_structure(ROOT / "data" / "pdb_dssp" / "3ieyB.pdb.gz")
    assert len(frame) == len(protein) and "".join(frame["residue"]) == protein.sequence
    assert set(frame["prediction"]) <= {"-", "E", "H"}
    assert ((frame[["prob_-", "prob_E", "prob_H"]].sum(axis=1) - 1).abs() < 1e-3).all()
