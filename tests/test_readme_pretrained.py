"""README "Trained models": the shell block and the Python example run as written (in a checkout-like folder, the
embedding cache in a temporary folder through ``$PA_GEO_CACHE``), once the shipped checkpoints are in the package."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.pretrained import require

ROOT = Path(__file__).resolve().parents[1]


def section() -> str:
    return (ROOT / "README.md").read_text().split("## Trained models", 1)[1].split("\n## ", 1)[0]


def python_example(text: str) -> str:
    """The indented block that starts with ``import pa_geo.pretrained``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "import pa_geo.pretrained")
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def test_section_names_the_commands_the_variants_and_the_card() -> None:
    text = section()
    assert len(re.findall(r"```bash\n", text)) == 1
    for needle in ("pa-geo predict --list-pretrained", "--pretrained ss8-rsa ", "--pretrained ss8-rsa-ca",
                   "--dssp-strings", "~/.cache/pa_geo/embeddings", "docs/models/ss8-rsa.md", "by name",
                   "pa_geo.pretrained.load(\"ss8-rsa\")"):
        assert needle in text, needle


@pytest.mark.slow
def test_section_runs_as_written(tmp_path: Path) -> None:
    for name in ("ss8-rsa", "ss8-rsa-ca"):
        require(name)
    text = section()
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    (tmp_path / "data").symlink_to(ROOT / "data")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT),
           "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2", "PA_GEO_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ss8-rsa-ca" in proc.stdout and (tmp_path / "cache" / "proteinmpnn_ca").is_dir()
    frame = pd.read_csv(tmp_path / "preds.csv", keep_default_na=False)
    assert frame.columns[:7].tolist() == ["id", "chain", "residue_number", "insertion_code", "residue", "ss8", "ss3"]
    assert frame["id"].unique().tolist() == ["3ieyB", "1ahsA"]
    strings = (tmp_path / "ss.tsv").read_text().splitlines()
    assert strings[0].split("\t") == ["id", "chain", "ss8", "ss3"] and strings[1].startswith("3ieyB\tB\t")
    script = tmp_path / "example.py"
    script.write_text(python_example(text))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "['ss8-rsa', 'ss8-rsa-ca']" in run.stdout and "torch.Size([" in run.stdout
