"""Named profiler scopes for the model's stages (``adapter.self_attention``, ``predictor.scale0.conv``, ...).

:func:`stage` opens a ``torch.profiler.record_function`` scope only while a profiler runs (a disabled
``record_function`` still costs ~6 us per call on CPU, which adds up over every level, block and scale), so a
throughput benchmark can attribute time per stage with ``torch.profiler.profile`` and training pays nothing.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch
from torch.autograd.profiler import record_function


def stage(name: str) -> ContextManager[object]:
    """``with stage("adapter.ffn"): ...`` -> a profiler scope named ``name`` when profiling, else a no-op."""
    return record_function(name) if torch.autograd._profiler_enabled() else contextlib.nullcontext()
