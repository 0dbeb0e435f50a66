"""``pa-geo embed --devices 2 --strategy ddp`` (Lightning predict, 2 CPU ranks on gloo) fills the same cache as a
single-process ``pa-geo embed``, entry by entry; and the predict module / shard writer in one process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pa_geo.cache.store import EmbeddingStore, decode_entry
from tests.helpers.backbones import SlowBackbone
from tests.helpers.esm_models import make_tiny_esm2
from tests.helpers.proteins import random_proteins

REPO = Path(__file__).resolve().parents[2]


def _entries(root: Path, name: str) -> dict[bytes, torch.Tensor]:
    with EmbeddingStore(root / name, readonly=True) as st:
        return {k: decode_entry(v) for k, v in st.iter_raw()}


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pa_geo.cli", "embed", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_ddp_ranks_fill_the_same_cache_as_one_process(tmp_path):
    ck = tmp_path / "esm2.pt"
    make_tiny_esm2(ck)
    fasta = tmp_path / "in.fasta"
    ps = random_proteins(14, lo=8, hi=70, seed=31)
    fasta.write_text("".join(f">{p.id}\n{p.sequence}\n" for p in ps))
    common = ["--backbone", "esm2", "--model", str(ck), "--layers", "1", "2", "--input", str(fasta),
              "--dtype", "fp32", "--batch-tokens", "150", "--no-progress"]
    ddp = _cli(common + ["--cache", str(tmp_path / "ddp"), "--devices", "2", "--strategy", "ddp",
                         "--accelerator", "cpu"], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "embedded        14" in ddp.stdout and ddp.stdout.count("embedded") == 1  # global rank 0 reports
    from pa_geo.backbones import get_backbone
    from pa_geo.cache.runner import embed_proteins  # what the CLI runs without --devices

    bb = get_backbone("esm2", model=str(ck), layers=[1, 2])
    assert embed_proteins(bb, ps, tmp_path / "single", batch_tokens=150, dtype="fp32", progress=False).embedded == 14
    a, b = _entries(tmp_path / "single", "esm2"), _entries(tmp_path / "ddp", "esm2")
    assert len(a) == 28 and a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not any((tmp_path / "ddp" / ".shards").iterdir())  # shards merged and removed
    from pa_geo.cache.distributed import embed_distributed

    again = embed_distributed(bb, ps, tmp_path / "ddp", devices=2, accelerator="cpu", progress=False)
    assert (again.embedded, again.cached) == (0, 14)  # nothing left: no ranks launched

def test_single_rank_predict_resumes_from_a_killed_runs_shard(tmp_path):
    from pa_geo.cache.distributed import embed_distributed, shard_root_for
    from pa_geo.cache.runner import embed_proteins, plan_embedding

    bb = SlowBackbone()
    ps = random_proteins(10, seed=32)
    plan = plan_embedding(bb, ps, None)
    # a killed earlier run left rank 0's shard with the first 4 proteins committed
    embed_proteins(bb, [p for p, _ in plan.todo[:4]], shard_root_for(tmp_path, bb, plan) / "rank0", progress=False)
    s = embed_distributed(bb, ps, tmp_path, devices=1, accelerator="cpu", batch_tokens=100, progress=False)
    assert s is not None and (s.embedded, s.cached, s.refused) == (6, 4, [])
    assert len(_entries(tmp_path, "_test_slow")) == 20
    ref = bb.embed(ps[:2])
    stored = _entries(tmp_path, "_test_slow")
    from pa_geo.cache.keys import protein_keys

    for p, r in zip(ps[:2], ref):
        for layer, key in protein_keys(bb.id, bb.layers, p, "sequence").items():
            assert torch.allclose(stored[key], r[layer], atol=2e-3)
    assert not any((tmp_path / ".shards").iterdir())
