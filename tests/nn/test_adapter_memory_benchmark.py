"""Smoke test of benchmarks/adapter_memory.py: one measured point in a subprocess, the table and the plot."""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "adapter_memory.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("adapter_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_walk_trace_has_ca_spacing(bench):
    trace = bench.random_walk_trace(50)
    steps = (trace[1:] - trace[:-1]).norm(dim=-1)
    assert trace.shape == (50, 3) and torch.allclose(steps, torch.full_like(steps, 3.8), atol=1e-4)


def test_one_point_is_measured_in_a_subprocess_and_reported(bench, tmp_path):
    pytest.importorskip("torch_cluster")
    args = argparse.Namespace(k=30, threads=1, point_timeout=120)
    point = bench.run_point("graph", 300, args, 0.0)
    assert point["L"] == 300 and point["edges"] == 300 * 30
    assert 0 < point["peak_delta_bytes"] < 2**30 and point["seconds"] > 0
    assert point["one_head_scores_bytes"] == 300 * 300 * 4
    assert "graph" in bench.table([point]).splitlines()[-1]
    out = tmp_path / "m.png"
    bench.plot([point, dict(point, L=600)], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(point)


def test_the_geometric_bias_keeps_peak_memory_linear_in_length(bench):
    """Global mode with the geometric bias (the default) on one protein longer than the pair-map cache: three times
    the length must cost about three times the memory (one head's L x L scores would cost nine times)."""
    pytest.importorskip("torch_cluster")
    args = argparse.Namespace(k=30, threads=1, point_timeout=300)
    short, long = (bench.run_point("global", n, args, 0.0, True) for n in (700, 2100))
    assert short["geometric_bias"] and long["geometric_bias"]
    ratio = long["peak_delta_bytes"] / short["peak_delta_bytes"]
    assert ratio < 4.5, (ratio, short["peak_delta_bytes"], long["peak_delta_bytes"])
