"""The README's research-code example runs as written (both blocks, in order, from a checkout-like directory)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_the_two_quick_start_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^\s+make (\w+)", quick, flags=re.M) == ["demo", "test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_research_example_runs(tmp_path):
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    (tmp_path / "data").symlink_to(ROOT / "data")
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loss = float(re.search(r"secondary-structure loss after 10 epochs: ([0-9.]+)", proc.stdout).group(1))
    assert 0.0 < loss < 0.8  # 3 classes: chance level is ln 3 = 1.10; seeded runs give 0.37
    assert (tmp_path / ".cache" / "embeddings").is_dir()


def readme_cli_commands() -> list[list[str]]:
    """The ``pa-geo fit|validate|test|predict`` commands of the README, as argument lists."""
    text = (ROOT / "README.md").read_text()
    lines = re.findall(r"^\s*(pa-geo (?:fit|validate|test|predict)\s+--config .*?)(?:\s+#.*)?$", text, flags=re.M)
    return [shlex.split(line)[1:] for line in lines]


def test_readme_config_commands_build_their_models(tmp_path, monkeypatch):
    from pa_geo.train.cli import build_cli

    commands = [c for c in readme_cli_commands() if "--data.table.path" not in c]  # (test_readme_own_data runs those)
    assert any("ablations/pool_none.yaml" in " ".join(c) or "ablations/pool_graclus.yaml" in " ".join(c)
               for c in commands) and len(commands) >= 6
    monkeypatch.chdir(tmp_path)
    for command in commands:
        configs = [a for i, a in enumerate(command) if i and command[i - 1] == "--config"]
        cli = build_cli([x for c in configs for x in ("--config", str(ROOT / c))], run=False)
        for task, head in cli.model.heads.items():  # widths bound from the composed encoder
            assert head.in_dim == getattr(cli.model.encoder, f"{head.reads}_dim"), (command, task)
