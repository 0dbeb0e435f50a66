"""The batched embed runner: skipping, batching, refusals, corruption, sharding + merge, crash safety."""
from __future__ import annotations

import signal
import subprocess
import threading
import sys
import time
from pathlib import Path

import pytest
import torch

from pa_geo.cache.keys import protein_keys
from pa_geo.cache.merge import merge_caches
from pa_geo.cache.runner import embed_proteins, make_batches
from pa_geo.cache.store import EmbeddingStore, decode_entry
from pa_geo.errors import CacheError
from pa_geo.io.protein import Protein
from tests.helpers import subprocess_env
from tests.helpers.backbones import LOG_ENV, SlowBackbone, SlowStructureBackbone, ToyEsmBackbone
from tests.helpers.proteins import random_proteins, with_structure


def _entries(root: Path, name: str) -> dict[bytes, torch.Tensor]:
    with EmbeddingStore(root / name, readonly=True) as st:
        return {k: decode_entry(v) for k, v in st.iter_raw()}


def test_make_batches_budget_and_long_chains():
    lengths = [10, 50, 30, 200, 30, 5, 49]
    batches = make_batches(lengths, batch_tokens=100, max_residues=60)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [3] in batches  # longer than the budget: alone
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100
    assert make_batches([70, 10], batch_tokens=1000, max_residues=60) == [[0], [1]]
    assert make_batches([], 100) == []


def test_make_batches_caps_padding():
    lengths = [100, 98, 97, 60, 59, 58, 20]
    batches = make_batches(lengths, batch_tokens=10_000, max_padding=0.05)
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    for b in batches:  # padded residues that are padding: <= 5%
        assert 1 - sum(lengths[i] for i in b) / (len(b) * max(lengths[i] for i in b)) <= 0.05
    assert make_batches(lengths, batch_tokens=10_000, max_padding=1.0) == [[0, 1, 2, 3, 4, 5, 6]]


def test_embeds_then_skips_everything_cached(tmp_path):
    bb = SlowBackbone()
    ps = random_proteins(12)
    s1 = embed_proteins(bb, ps, tmp_path, batch_tokens=120, progress=False)
    assert (s1.embedded, s1.cached, s1.refused) == (12, 0, [])
    assert s1.residues == sum(len(p) for p in ps) and s1.residues_per_s > 0
    assert len(bb.calls) > 1 and max(bb.calls) > 1  # several batches, some with more than one protein
    s2 = embed_proteins(bb, ps + [Protein.from_sequence("dup", ps[0].sequence)], tmp_path, progress=False)
    assert (s2.embedded, s2.cached) == (0, 13)
    stored = _entries(tmp_path, "_test_slow")
    ref = bb.embed(ps[:3])
    for p, r in zip(ps[:3], ref):
        for layer, key in protein_keys(bb.id, bb.layers, p, "sequence").items():
            assert torch.allclose(stored[key], r[layer], atol=2e-3)


def test_batched_equals_one_at_a_time(tmp_path):
    bb = ToyEsmBackbone()
    ps = random_proteins(10, lo=5, hi=70, seed=2)
    embed_proteins(bb, ps, tmp_path / "batched", batch_tokens=400, dtype="fp32", progress=False)
    embed_proteins(bb, ps, tmp_path / "single", batch_tokens=1, dtype="fp32", progress=False)
    a, b = _entries(tmp_path / "batched", "_test_toy_esm"), _entries(tmp_path / "single", "_test_toy_esm")
    assert a.keys() == b.keys() and len(a) == 20
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    # padding really happened: the batched run used multi-protein forward passes
    assert any(t.abs().sum() > 0 for t in a.values())


def test_refusals_are_reported_and_the_rest_embedded(tmp_path):
    bb = SlowBackbone(fail_on="W")
    ps = random_proteins(6, seed=4)
    ps = [Protein.from_sequence(p.id, p.sequence.replace("W", "A")) for p in ps]
    ps.append(Protein.from_sequence("bad", "ACDWWK"))
    ps.append(Protein.from_sequence("empty", ""))
    ps.append(Protein.from_sequence("bad-again", "ACDWWK"))
    ps.append(Protein.from_sequence("dup", ps[0].sequence))
    s = embed_proteins(bb, ps, tmp_path, batch_tokens=10_000, progress=False)
    assert (s.embedded, s.cached) == (6, 1)
    reasons = dict(s.refused)
    assert set(reasons) == {"bad", "empty", "bad-again"} and "bad" in reasons["bad-again"]
    assert "RuntimeError" in reasons["bad"] and "\n" not in reasons["bad"]


def test_structure_backbone_refuses_sequence_only(tmp_path):
    ps = random_proteins(3, seed=5)
    s = embed_proteins(SlowStructureBackbone(), [with_structure(ps[0]), ps[1]], tmp_path, progress=False)
    assert s.embedded == 1 and s.refused[0][0] == ps[1].id and "coordinates" in s.refused[0][1]


def test_corrupt_entry_is_reported_and_recomputed(tmp_path):
    bb = SlowBackbone()
    ps = random_proteins(4, seed=6)
    embed_proteins(bb, ps, tmp_path, progress=False)
    key = protein_keys(bb.id, bb.layers, ps[2], "sequence")[2]
    with EmbeddingStore(tmp_path / "_test_slow", readonly=False) as st:
        raw = bytearray(st.get_raw_many([key])[0])
        raw[-1] ^= 0xFF
        st.put_raw_many([(key, bytes(raw))])
    with pytest.warns(UserWarning, match=f"protein {ps[2].id} layer 2"):
        s = embed_proteins(bb, ps, tmp_path, progress=False)
    assert (s.embedded, s.cached) == (1, 3)
    with EmbeddingStore(tmp_path / "_test_slow", readonly=True) as st:
        assert st.get(key).shape == (len(ps[2]), 4)


def test_two_shards_plus_merge_equal_one_run(tmp_path):
    bb = SlowBackbone()
    ps = random_proteins(30, seed=8)
    s0 = embed_proteins(bb, ps, tmp_path / "s0", shard=(0, 2), progress=False)
    s1 = embed_proteins(bb, ps, tmp_path / "s1", shard=(1, 2), progress=False)
    assert s0.embedded + s1.embedded == 30 and s0.embedded > 0 and s1.embedded > 0
    assert s0.other_shards == s1.embedded
    copied = merge_caches([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    assert copied == {"_test_slow": 60}
    embed_proteins(bb, ps, tmp_path / "full", progress=False)
    merged, full = _entries(tmp_path / "merged", "_test_slow"), _entries(tmp_path / "full", "_test_slow")
    assert merged.keys() == full.keys()
    assert all(torch.equal(merged[k], full[k]) for k in full)
    with EmbeddingStore(tmp_path / "merged" / "_test_slow", readonly=True) as st:
        assert st.meta.backbone_id == bb.id and st.meta.dims == {1: 8, 2: 4}
    again = embed_proteins(bb, ps, tmp_path / "merged", progress=False)
    assert (again.embedded, again.cached) == (0, 30)
    with pytest.raises(CacheError, match="invalid shard"):
        embed_proteins(bb, ps, tmp_path / "x", shard=(2, 2), progress=False)


def test_kill_9_mid_run_then_rerun_finishes_without_recomputing(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "log.txt"
    job = [sys.executable, "-m", "tests.helpers.embed_job", str(cache), "24", "0.15"]
    env = subprocess_env(**{LOG_ENV: str(log)})
    proc = subprocess.Popen(job, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    committed = 0
    while time.time() < deadline and committed < 4 and proc.poll() is None:
        time.sleep(0.05)
        if (cache / "_test_slow" / "data.mdb").exists():
            with EmbeddingStore(cache / "_test_slow", readonly=True) as st:
                committed = len(st) // 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 4 <= committed < 24, "the run must be killed mid-way"
    with EmbeddingStore(cache / "_test_slow", readonly=True) as st:
        before = {k for k, _ in st.iter_raw()}
    n_before = len(before) // 2
    log.write_text("")
    out = subprocess.run(job, env=env, capture_output=True, text=True, check=True, timeout=120)
    embedded, cached, refused = map(int, out.stdout.split())
    assert (embedded, cached, refused) == (24 - n_before, n_before, 0)
    recomputed = set(log.read_text().split())
    ps = random_proteins(24, lo=20, hi=30, seed=7)
    bb = SlowBackbone()
    done_before = {p.id for p in ps if protein_keys(bb.id, bb.layers, p, "sequence")[1] in before}
    assert len(done_before) == n_before and not (recomputed & done_before)
    with EmbeddingStore(cache / "_test_slow", readonly=True) as st:
        entries = list(st.iter_raw())
    assert len(entries) == 48
    for _, v in entries:
        decode_entry(v)  # raises on any damaged entry


class _OverlapProbe(SlowBackbone):
    """Featurises in ``_prepare_inputs``; the forward of batch ``i`` waits (up to 5 s) for the featurising of
    batch ``i + 1`` to start, and records whether it did: that can only happen on another thread."""

    def __init__(self, n_batches: int) -> None:
        super().__init__()
        self.n_batches = n_batches
        self.prepare_started = [threading.Event() for _ in range(n_batches)]
        self.forward_started = [threading.Event() for _ in range(n_batches)]
        self.prep_threads: set[str] = set()
        self.prepared_ahead: list[bool] = []
        self.count = 0

    def _prepare_inputs(self, proteins):
        self.prep_threads.add(threading.current_thread().name)
        n, self.count = self.count, self.count + 1
        self.prepare_started[n].set()
        return n

    def _embed_prepared(self, prepared):
        i = prepared.inputs
        self.forward_started[i].set()
        self.prepared_ahead.append(i + 1 == self.n_batches or self.prepare_started[i + 1].wait(5))
        return self._embed_batch(prepared.proteins)


def test_featurising_and_commits_overlap_the_model(tmp_path):
    ps = random_proteins(8, lo=20, hi=30, seed=3)
    bb = _OverlapProbe(len(make_batches([len(p) for p in ps], 60)))
    committed_during_next_forward: list[bool] = []
    commit_threads: set[str] = set()

    class SlowDiskStore(EmbeddingStore):
        """Each commit waits (up to 5 s) for the next batch's forward to start: only possible off the model
        thread."""

        def put_many(self, items):
            k = len(committed_during_next_forward)
            commit_threads.add(threading.current_thread().name)
            committed_during_next_forward.append(k + 1 == bb.n_batches or bb.forward_started[k + 1].wait(5))
            super().put_many(items)

    with SlowDiskStore(tmp_path / "_test_slow", readonly=False) as store:
        s = embed_proteins(bb, ps, store, batch_tokens=60, progress=False)
        assert s.embedded == 8 and len(store) == 16
    assert bb.n_batches >= 4 and len(bb.prepared_ahead) == len(committed_during_next_forward) == bb.n_batches
    assert all(bb.prepared_ahead) and all(committed_during_next_forward)
    assert threading.main_thread().name not in bb.prep_threads | commit_threads


def test_default_batch_budget_comes_from_the_backbone_for_its_device(tmp_path):
    class Budgeted(SlowBackbone):
        batch_tokens_by_device = {"cpu": 60, "*": 10_000}

    bb = Budgeted()
    ps = random_proteins(8, lo=20, hi=30, seed=3)
    assert bb.default_batch_tokens() == 60
    embed_proteins(bb, ps, tmp_path, progress=False)
    assert sorted(bb.calls) == sorted(len(b) for b in make_batches([len(p) for p in ps], 60))
    assert max(bb.calls) == 2  # 60 tokens: at most two 20-30-residue chains per forward
