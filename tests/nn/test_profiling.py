"""Profiler scopes of the full model's stages: present in a trace, absent (free) without a profiler."""
from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from pa_geo.nn import AdapterEncoder, MultiScalePredictor, ProteinAdapter, profiling
from tests.helpers.nn_graphs import residue_batch

LEVELS = {"emb_near_8": 12, "emb_proteinmpnn_3": 8}
STAGES = ["adapter.self_attention", "adapter.cross_attention", "adapter.ffn", "predictor.scale0.conv",
          "predictor.scale0.pool", "predictor.scale1.conv", "predictor.scale1.pool", "predictor.readout",
          "predictor.merge"]


def model_and_batch():
    torch.manual_seed(0)
    batch = residue_batch((0,), dim=4)
    for name, dim in LEVELS.items():
        batch[name] = torch.randn(batch.num_nodes, dim)
    enc = AdapterEncoder(ProteinAdapter(LEVELS, d_model=16, n_heads=4), MultiScalePredictor(16, 16, num_scales=2))
    return enc, batch


def test_stage_scopes_appear_in_a_profiler_trace():
    enc, batch = model_and_batch()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        enc(batch).graph.sum().backward()
    names = {e.key for e in prof.key_averages()}
    assert [s for s in STAGES if s not in names] == []
    counts = {e.key: e.count for e in prof.key_averages()}
    assert counts["adapter.self_attention"] == 2 and counts["predictor.readout"] == 2  # per block / per scale


def test_no_scope_is_opened_without_a_profiler(monkeypatch):
    opened = []
    monkeypatch.setattr(profiling, "record_function", lambda name: opened.append(name))
    enc, batch = model_and_batch()
    enc(batch)
    assert opened == []
