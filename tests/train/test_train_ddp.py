"""DDP on CPU (gloo, 2 processes) through the CLI on real chains: both ranks end with identical, trained weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import subprocess_env
from tests.helpers import training as tk


def test_ddp_two_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    cache = tk.fill_cache(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-m", "tests.helpers.ddp_job", str(tmp_path), str(cache)], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["start"] == ranks[1]["start"]  # same seed, same initial weights
    assert ranks[0]["end"] == ranks[1]["end"]  # gradients were all-reduced every step
    assert ranks[0]["end"] != ranks[0]["start"]  # and training did change them
    # 2 epochs; each rank ran the same number of batches (node-budget batches split evenly between ranks)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 2 * ranks[0]["batches"] > 0
    # Lightning re-made the node-budget sampler for each rank and kept the (index, epoch) keys of training reads
    assert [r["sampler"] for r in ranks] == [["NodeBudgetBatchSampler", 2, rank, True, 1] for rank in range(2)]
