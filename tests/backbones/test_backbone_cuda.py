"""One embed on CUDA per fast path (skipped without a GPU; run with ``pytest -m cuda`` on a GPU machine):
bfloat16 autocast is the default there and stays close to float32, float32 on CUDA matches the CPU."""
from __future__ import annotations

import pytest
import torch

from pa_geo.backbones import get_backbone
from tests.helpers.esm_models import make_tiny_esm2, make_tiny_esm_if1
from tests.helpers.hf_models import make_tiny_prot_t5
from tests.helpers.proteins import structuredb_chains

pytestmark = pytest.mark.cuda


def _close(a: dict, b: dict, rel: float) -> bool:
    return all((a[k] - b[k]).abs().max() <= rel * b[k].abs().max() for k in b)


@pytest.mark.parametrize("name, make, kwargs", [
    ("esm2", make_tiny_esm2, {}),
    ("hf", lambda path: make_tiny_prot_t5(path), {}),
])
def test_sequence_backbone_on_cuda_bf16_by_default_close_to_fp32(tmp_path, name, make, kwargs):
    path = make(tmp_path / "model")
    cpu = get_backbone(name, model=str(path), layers="all", **kwargs)
    chains = structuredb_chains()
    ref = cpu.embed(chains)
    gpu = get_backbone(name, model=str(path), layers="all", **kwargs).to("cuda")
    assert gpu.dtype == torch.bfloat16 and gpu.weight_dtype == torch.float32
    half = gpu.embed(chains)
    assert all(o[k].device.type == "cpu" and o[k].dtype == torch.float32 for o in half for k in o)
    assert all(_close(h, r, 0.05) for h, r in zip(half, ref))
    full = gpu.to(torch.float32).embed(chains)
    assert gpu.dtype == torch.float32
    assert all(_close(f, r, 1e-4) for f, r in zip(full, ref))


def test_esm_if1_on_cuda_matches_cpu(tmp_path):
    make_tiny_esm_if1(tmp_path / "if1.pt")
    chains = structuredb_chains()
    ref = get_backbone("esm_if1", model=str(tmp_path / "if1.pt"), layers="all").embed(chains)
    gpu = get_backbone("esm_if1", model=str(tmp_path / "if1.pt"), layers="all").to("cuda")
    assert gpu.dtype == torch.float32  # structure encoders stay in full precision unless asked
    assert all(_close(g, r, 1e-4) for g, r in zip(gpu.embed(chains), ref))


def test_embed_runner_on_cuda_fills_the_cache(tmp_path):
    from pa_geo.cache.runner import embed_proteins
    from pa_geo.cache.store import EmbeddingStore

    make_tiny_esm2(tmp_path / "esm2.pt")
    bb = get_backbone("esm2", model=str(tmp_path / "esm2.pt")).to("cuda")
    s = embed_proteins(bb, structuredb_chains(), tmp_path / "cache", progress=False)
    assert s.embedded == 3 and bb.default_batch_tokens() == 16384
    with EmbeddingStore(tmp_path / "cache" / "esm2", readonly=True) as st:
        assert len(st) == 3
