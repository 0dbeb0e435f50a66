"""Attaching cached embeddings to residue and atom graphs, and the dataset transform."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch_geometric.data import Batch, Data

from pa_geo.cache.runner import embed_proteins
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource, attach_embeddings, stamp_digests
from pa_geo.errors import CacheError
from pa_geo.graphs.schema import embedding_field
from pa_geo.tasks.kinds.data import PairData, ResidueData
from tests.helpers.backbones import SlowBackbone
from tests.helpers.proteins import random_proteins


@pytest.fixture()
def cached(tmp_path):
    ps = random_proteins(3, seed=11)
    embed_proteins(SlowBackbone(), ps, tmp_path, dtype="fp32", progress=False)
    return tmp_path, ps


def test_residue_graph_gets_one_field_per_layer(cached):
    root, ps = cached
    p = ps[0]
    g = Data(pos=torch.zeros(len(p), 3), protein_id=p.id)
    attach_embeddings(g, p, [EmbeddingSource(root, "_test_slow", layers=[1, 2])])
    ref = SlowBackbone().embed([p])[0]
    f1, f2 = embedding_field("_test_slow", 1), embedding_field("_test_slow", 2)
    assert g[f1].dtype == torch.float32 and g[f1].shape == (len(p), 8) and g[f2].shape == (len(p), 4)
    assert torch.equal(g[f1], ref[1]) and torch.equal(g[f2], ref[2])
    g2 = attach_embeddings(Data(num_nodes=len(p)), p, [EmbeddingSource(root, "_test_slow", field_name="slow")])
    assert set(g2.keys()) >= {"emb_slow_1", "emb_slow_2"}  # layers=None: every stored layer


def test_atom_graph_gathers_through_atom2residue(cached):
    root, ps = cached
    p = ps[1]
    a2r = torch.tensor([0, 0, 1, 2, 2, 2, len(p) - 1])
    g = attach_embeddings(Data(pos=torch.zeros(7, 3), atom2residue=a2r), p, [EmbeddingSource(root, "_test_slow", [1])])
    ref = SlowBackbone().embed([p])[0][1]
    assert torch.equal(g[embedding_field("_test_slow", 1)], ref[a2r])


def test_missing_entry_names_protein_backbone_and_command(cached):
    root, ps = cached
    other = random_proteins(1, seed=99, prefix="new")[0]
    fasta = root / "new.fasta"
    fasta.write_text(f">{other.id}\n{other.sequence}\n")
    other.source = str(fasta)  # a file `pa-geo embed --input` reads back into this protein: that command
    with pytest.raises(CacheError) as err:
        attach_embeddings(Data(num_nodes=len(other)), other, [EmbeddingSource(root, "_test_slow", [1])])
    msg = str(err.value)
    assert "new0" in msg and "_test_slow" in msg and "\n" not in msg
    assert msg.endswith(f"run: pa-geo embed --backbone _test_slow --layers 1 --cache {root} --input {fasta}")
    other.source = f"{root}/table.csv:57"  # not a file embed reads: the training config's command
    with pytest.raises(CacheError, match=r"run: pa-geo embed --config <your config> \(the training config\), or "
                                         r"pa-geo embed --backbone _test_slow --layers 1 --cache \S+ --input <"):
        attach_embeddings(Data(num_nodes=len(other)), other, [EmbeddingSource(root, "_test_slow", [1])])
    with pytest.raises(CacheError, match="layer"):
        EmbeddingSource(root, "_test_slow", [7]).read(ps[0])
    with pytest.raises(CacheError, match="pa-geo embed --backbone esm1b"):
        EmbeddingSource(root, "esm1b", [33]).read(ps[0])
    with pytest.raises(CacheError, match="residue graph has"):
        attach_embeddings(Data(num_nodes=2), ps[0], [EmbeddingSource(root, "_test_slow", [1])])


def test_transform_attaches_every_part_and_survives_pickling(cached):
    root, ps = cached
    src = EmbeddingSource(root, "_test_slow", [2])
    src.read(ps[0])  # opens the env
    tf = pickle.loads(pickle.dumps(AttachEmbeddings([src])))
    field = embedding_field("_test_slow", 2)
    graphs = [stamp_digests(Data(pos=torch.zeros(len(p), 3), protein_id=p.id, num_nodes=len(p)), p) for p in ps]
    single = ResidueData.from_parts({"": graphs[0]}, record_id="r0")
    pair = PairData.from_parts({"a": graphs[1], "b": graphs[2]}, record_id="r1")
    out = [tf(single), tf(pair)]
    ref = SlowBackbone().embed(ps)
    assert torch.equal(out[0][field], ref[0][2])
    assert torch.equal(out[1][f"a__{field}"], ref[1][2]) and torch.equal(out[1][f"b__{field}"], ref[2][2])
    batch = Batch.from_data_list([tf(PairData.from_parts({"a": g, "b": g}, record_id=g.protein_id)) for g in graphs])
    assert batch[f"a__{field}"].shape == (sum(len(p) for p in ps), 4)
    other = random_proteins(1, seed=5, prefix="unseen")[0]
    with pytest.raises(CacheError, match="unseen0"):
        tf(stamp_digests(Data(num_nodes=len(other), protein_id=other.id), other))


def test_workers_forked_after_the_parent_read_open_their_own_environment(cached):
    from torch.utils.data import DataLoader

    root, ps = cached
    src = EmbeddingSource(root, "_test_slow", [2])
    tf = AttachEmbeddings([src])
    graphs = [stamp_digests(Data(pos=torch.zeros(len(p), 3), protein_id=p.id, num_nodes=len(p)), p) for p in ps]
    first = tf(graphs[0].clone())  # the parent process opens the LMDB environment
    loader = DataLoader([g.clone() for g in graphs], batch_size=None, num_workers=2,
                        collate_fn=lambda g: tf(g))  # noqa: PLW0108 - fork-inherited closure
    out = list(loader)
    field = embedding_field("_test_slow", 2)
    assert torch.equal(out[0][field], first[field]) and [o[field].shape[0] for o in out] == [len(p) for p in ps]
    assert torch.equal(tf(graphs[1].clone())[field], out[1][field])  # and the parent still reads


def test_transform_keeps_the_cache_dtype_and_reads_exact_values(tmp_path):
    from pa_geo.cache.store import _HEADER
    from pa_geo.datasets.embedded import ENTRY_HEADER_BYTES

    assert ENTRY_HEADER_BYTES == _HEADER.size
    ps = random_proteins(2, seed=3)
    embed_proteins(SlowBackbone(), ps, tmp_path, progress=False)  # the default cache dtype: fp16
    src = EmbeddingSource(tmp_path, "_test_slow", [1])
    g = AttachEmbeddings([src])(stamp_digests(Data(num_nodes=len(ps[0]), protein_id=ps[0].id), ps[0]))
    field = embedding_field("_test_slow", 1)
    assert g[field].dtype == torch.float16 and "digest_sequence" not in g
    assert torch.equal(g[field].float(), src.read(ps[0])[1])  # the float32 reader sees the same numbers
