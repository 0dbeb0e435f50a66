"""The runner and attach with the real fair-esm backbones on tiny checkpoints (``tests.helpers.esm_models``)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from pa_geo.cache.runner import embed_proteins
from pa_geo.cache.store import EmbeddingStore, decode_entry
from pa_geo.datasets.embedded import EmbeddingSource, attach_embeddings
from tests.helpers import esm_models
from tests.helpers.proteins import random_proteins

esm_sequence = pytest.importorskip("pa_geo.backbones.esm_sequence")
DATA = Path(__file__).parents[1] / "data"


def _entries(root: Path, name: str) -> dict[bytes, torch.Tensor]:
    with EmbeddingStore(root / name, readonly=True) as st:
        return {k: decode_entry(v) for k, v in st.iter_raw()}


@pytest.mark.parametrize("maker, name", [("make_tiny_esm1b", "esm1b"), ("make_tiny_esm2", "esm2")])
def test_esm_batched_cache_equals_single_and_attaches(tmp_path, maker, name):
    from pa_geo.backbones.base import get_backbone

    ck = tmp_path / f"{name}.pt"
    getattr(esm_models, maker)(ck)
    bb = get_backbone(name, layers="all", model=str(ck))
    ps = random_proteins(9, lo=5, hi=80, seed=21)
    s = embed_proteins(bb, ps, tmp_path / "b", batch_tokens=300, dtype="fp32", progress=False)
    assert s.embedded == 9
    embed_proteins(bb, ps, tmp_path / "s", batch_tokens=1, dtype="fp32", progress=False)
    a, b = _entries(tmp_path / "b", name), _entries(tmp_path / "s", name)
    assert a.keys() == b.keys() and len(a) == 9 * len(bb.layers)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    g = attach_embeddings(Data(num_nodes=len(ps[0])), ps[0], [EmbeddingSource(tmp_path / "b", name, [2])])
    assert torch.allclose(g[f"emb_{name}_2"], bb.embed([ps[0]])[0][2], atol=1e-5)


def test_esm_if1_structure_cache_from_real_pdb(tmp_path):
    pytest.importorskip("torch_scatter")
    pytest.importorskip("pa_geo.backbones.esm_if1")
    from pa_geo.backbones.base import get_backbone
    from pa_geo.io import read_structure

    files = [DATA / "2cviA.pdb.gz", DATA / "1mr1D.pdb.gz"]
    if not all(f.exists() for f in files):
        pytest.skip("real test structures not present")
    ck = tmp_path / "if1.pt"
    esm_models.make_tiny_esm_if1(ck)
    bb = get_backbone("esm_if1", model=str(ck))
    ps = [read_structure(f) for f in files]
    s = embed_proteins(bb, ps, tmp_path / "c", batch_tokens=10_000, dtype="fp32", progress=False)
    assert (s.embedded, s.refused) == (2, [])
    single = [bb.embed([p])[0] for p in ps]
    for p, ref in zip(ps, single):
        layer = bb.layers[0]
        got = EmbeddingSource(tmp_path / "c", "esm_if1").read(p)[layer]
        assert torch.allclose(got, ref[layer], atol=1e-4)
