"""Overlapping windows for chains longer than a model's positions, blended back with linear ramps."""
from __future__ import annotations

from typing import Sequence

import torch

from pa_geo.errors import ConfigError


def plan_windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` windows of ``size`` residues covering ``0..length``, consecutive ones overlapping by at
    least ``overlap``; the last window is aligned to the chain end. One window ``(0, length)`` when it fits."""
    if size < 1 or not 0 <= overlap < size:
        raise ConfigError(f"window size {size} / overlap {overlap}: need size >= 1 and 0 <= overlap < size")
    if length <= size:
        return [(0, length)]
    step = size - overlap
    starts = list(range(0, length - size, step)) + [length - size]
    return [(s, s + size) for s in starts]


def window_weights(start: int, end: int, length: int, overlap: int) -> torch.Tensor:
    """Blend weights ``[end - start]`` float32: linear ramps ``1/(overlap+1) .. overlap/(overlap+1)`` over the
    first / last ``overlap`` rows where the window has a neighbour on that side, 1 elsewhere (never 0)."""
    w = torch.ones(end - start)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    if overlap and start > 0:
        w[:overlap] = torch.minimum(w[:overlap], ramp)
    if overlap and end < length:
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def blend_windows(pieces: Sequence[torch.Tensor], plan: Sequence[tuple[int, int]], length: int,
                  overlap: int) -> torch.Tensor:
    """Merge per-window embeddings ``pieces[i] [end_i - start_i, D]`` into ``[length, D]``: each row is the
    weighted mean of the windows covering it (weights from :func:`window_weights`)."""
    if len(pieces) == 1 and plan[0] == (0, length):
        return pieces[0]
    dim = pieces[0].shape[-1]
    acc = torch.zeros(length, dim, dtype=torch.float64)
    norm = torch.zeros(length, 1, dtype=torch.float64)
    for piece, (s, e) in zip(pieces, plan):
        w = window_weights(s, e, length, overlap).to(torch.float64)[:, None]
        acc[s:e] += w * piece.to(torch.float64)
        norm[s:e] += w
    return (acc / norm).to(pieces[0].dtype)
