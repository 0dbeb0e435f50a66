"""The LMDB store: entry encoding, checksums, keys, metadata, map growth, lock-free readers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.cache.keys import content_digest, entry_key, protein_keys, shard_of
from pa_geo.cache.store import CorruptEntry, EmbeddingStore, decode_entry, encode_entry
from pa_geo.errors import CacheError
from pa_geo.io.protein import Protein
from tests.helpers.proteins import random_proteins, with_structure


def test_encode_decode_fp16_fp32():
    x = torch.randn(17, 5) * 3
    y16 = decode_entry(encode_entry(x, "fp16"))
    y32 = decode_entry(encode_entry(x, "fp32"))
    assert y16.dtype == torch.float32 and y16.shape == (17, 5)
    assert torch.allclose(y16, x, atol=5e-3, rtol=1e-3) and not torch.equal(y16, x)
    assert torch.equal(y32, x)
    assert len(encode_entry(x, "fp16")) == 20 + 17 * 5 * 2


def test_fp16_overflow_falls_back_to_fp32():
    x = torch.tensor([[1e6, -2.0]])
    assert torch.equal(decode_entry(encode_entry(x, "fp16")), x)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_corrupt_entry_detected(damage):
    raw = bytearray(encode_entry(torch.randn(4, 3), "fp16"))
    if damage == "flip":
        raw[-3] ^= 0x10
    elif damage == "truncate":
        raw = raw[:-2]
    else:
        raw[0:4] = b"XXXX"
    with pytest.raises(CorruptEntry, match="protein P1"):
        decode_entry(bytes(raw), "protein P1")


def test_keys_depend_on_content_layer_and_weights():
    a, b = random_proteins(2, seed=1)
    renamed = Protein.from_sequence("other-name", a.sequence)
    assert content_digest(a, "sequence") == content_digest(renamed, "sequence")
    assert content_digest(a, "sequence") != content_digest(b, "sequence")
    ka = protein_keys("m-1", [1, 2], a, "sequence")
    assert ka[1] != ka[2] and len(ka[1]) == 32
    assert protein_keys("m-2", [1], a, "sequence")[1] != ka[1]
    assert entry_key("m-1", 1, content_digest(a, "sequence")) == ka[1]


def test_structure_keys_round_coordinates_and_see_chains():
    p = with_structure(random_proteins(1, lo=20, hi=20)[0])
    p.backbone = np.round(p.backbone, 3)  # PDB files carry 3 decimals; float noise below 5e-4 A must not matter
    jitter = Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes,
                     p.backbone + np.float32(1e-5), p.chain_breaks)
    moved = Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes,
                    p.backbone + np.float32(0.01), p.chain_breaks)
    chains = np.array(["A"] * 10 + ["B"] * 10, dtype=object)
    two_chains = Protein(p.id, p.sequence, chains, p.residue_numbers, p.insertion_codes, p.backbone, p.chain_breaks)
    d = content_digest(p, "structure")
    assert content_digest(jitter, "structure") == d
    assert content_digest(moved, "structure") != d
    assert content_digest(two_chains, "structure") != d
    # a sequence backbone ignores coordinates
    assert content_digest(moved, "sequence") == content_digest(p, "sequence")
    nan = p.backbone.copy()
    nan[3, 0] = np.nan
    gap = Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, nan, p.chain_breaks)
    assert content_digest(gap, "structure") not in (d, content_digest(moved, "structure"))


def test_shard_of_is_deterministic_and_covers():
    ps = random_proteins(40, seed=3)
    shards = [shard_of(p, "sequence", 3) for p in ps]
    assert shards == [shard_of(p, "sequence", 3) for p in ps]
    assert set(shards) == {0, 1, 2}


def test_store_roundtrip_meta_and_mismatch(tmp_path):
    with EmbeddingStore(tmp_path / "m", readonly=False) as st:
        assert st.meta is None and len(st) == 0
        meta = st.register("m", "m-abc", "sequence", {1: 3})
        assert meta.dims == {1: 3}
        st.register("m", "m-abc", "sequence", {2: 5})
        x = torch.randn(6, 3)
        st.put_many([(b"k" * 32, x)])
        assert len(st) == 1
        with pytest.raises(CacheError, match="holds embeddings of m-abc"):
            st.register("m", "m-other", "sequence", {1: 3})
        with pytest.raises(CacheError, match="dim 3"):
            st.register("m", "m-abc", "sequence", {1: 4})
    with EmbeddingStore(tmp_path / "m", readonly=True) as ro:
        assert ro.meta.dims == {1: 3, 2: 5} and ro.meta.backbone_id == "m-abc"
        assert torch.allclose(ro.get(b"k" * 32), x, atol=1e-2)
        assert ro.get(b"z" * 32) is None
        with pytest.raises(CacheError, match="read-only"):
            ro.put_many([(b"q" * 32, x)])
    with pytest.raises(CacheError, match="no embedding store"):
        EmbeddingStore(tmp_path / "absent", readonly=True)


def test_map_grows_and_lockfree_reader_follows(tmp_path):
    writer = EmbeddingStore(tmp_path / "m", readonly=False, dtype="fp32", map_size=64 << 10)
    writer.register("m", "m-1", "sequence", {1: 256})
    writer.put_many([(bytes([0]) * 32, torch.ones(2, 256))])
    reader = EmbeddingStore(tmp_path / "m", readonly=True)  # opened before the map grows
    start = writer.env.info()["map_size"]
    items = [(bytes([i + 1]) * 32, torch.full((100, 256), float(i))) for i in range(20)]  # ~2 MB > 64 KiB
    writer.put_many(items)
    assert writer.env.info()["map_size"] > start
    assert len(reader) == 21
    assert torch.equal(reader.get(bytes([20]) * 32), torch.full((100, 256), 19.0))
    keys = [k for k, _ in reader.iter_raw(chunk=4)]
    assert len(keys) == 21 and keys == sorted(keys)
    writer.close()
    reader.close()


def test_reader_and_writer_share_one_env_in_a_process(tmp_path):
    w = EmbeddingStore(tmp_path / "m", readonly=False)
    w.register("m", "m-1", "sequence", {1: 2})
    w.put_many([(b"a" * 32, torch.ones(1, 2))])
    w.close()
    r = EmbeddingStore(tmp_path / "m", readonly=True)
    w2 = EmbeddingStore(tmp_path / "m", readonly=False)  # upgrades the shared env; the reader keeps working
    w2.put_many([(b"b" * 32, torch.ones(3, 2))])
    assert r.get(b"b" * 32).shape == (3, 2) and len(r) == 2
    w2.close()
    assert r.get(b"a" * 32).shape == (1, 2)
    r.close()
    with pytest.raises(CacheError, match="closed"):
        r.get(b"a" * 32)


def test_lockfree_reader_follows_map_growth_by_another_process(tmp_path):
    import subprocess
    import sys

    w = EmbeddingStore(tmp_path / "m", readonly=False, dtype="fp32", map_size=64 << 10)
    w.register("m", "m-1", "sequence", {1: 256})
    w.close()
    reader = EmbeddingStore(tmp_path / "m", readonly=True)
    assert len(reader) == 0
    code = ("import torch, sys; from pa_geo.cache.store import EmbeddingStore as S; "
            "w = S(sys.argv[1], readonly=False, dtype='fp32', map_size=64 << 10); "
            "w.put_many([(bytes([i]) * 32, torch.full((100, 256), float(i))) for i in range(20)]); "
            "print(w.env.info()['map_size'])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 64 << 10
    assert len(reader) == 20
    assert torch.equal(reader.get(bytes([19]) * 32), torch.full((100, 256), 19.0))
    reader.close()


def test_register_writes_only_what_is_new_and_writable_flags(tmp_path):
    from pa_geo.cache.merge import store_dirs

    with EmbeddingStore(tmp_path / "m", readonly=False) as st:
        st.register("m", "m-1", "sequence", {1: 3})
        txnid = st.env.info()["last_txnid"]
        assert st.register("m", "m-1", "sequence", {1: 3}).dims == {1: 3}
        assert st.env.info()["last_txnid"] == txnid  # nothing new: no write transaction (read-only caches rely on it)
        st.register("m", "m-1", "sequence", {2: 4})
        assert st.env.info()["last_txnid"] == txnid + 1 and st.writable
        st.require_writable("never raised")
    with EmbeddingStore(tmp_path / "m", readonly=True) as ro:
        assert not ro.writable
        with pytest.raises(CacheError, match=r"m: store opened read-only; 2 proteins to embed$"):
            ro.require_writable("2 proteins to embed")
    (tmp_path / "f").write_text("x")
    for make in (lambda: EmbeddingStore(tmp_path / "f" / "m", readonly=False), lambda: store_dirs(tmp_path / "f")):
        with pytest.raises(CacheError, match="f: is a file, not a cache directory"):
            make()
