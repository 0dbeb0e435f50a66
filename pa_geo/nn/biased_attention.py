"""Attention of one query chunk with a learned additive score bias (the adapter's geometric bias).

The bias needs its gradient, which SDPA's tiled CPU kernel (flash attention) does not give for a float mask, so on
a CPU the scores are written out: ``baddbmm`` adds the bias in the score product (heads first, as the bias comes),
then softmax and values, and autograd gives every gradient exactly. SDPA's own float-mask path (its math kernel)
computes the same with several more passes over the scores. On CUDA, SDPA's memory-efficient kernel takes the bias
with its gradient and runs instead, and so does SDPA (its tiled CPU kernel) whenever the bias needs no gradient
(evaluation, prediction). Measured on a CPU, attention with the bias costs about twice the tiled kernel
without one; the tiled kernel with a constant float mask was no faster than the written-out scores.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

PairBias = Callable[[slice | Tensor], Tensor]
"""Query rows (a slice or an index tensor, within the piece) -> additive bias ``[H, B, rows, L]`` (heads first)
over the L keys of one key group."""


def chunk_bias(pair_bias: PairBias, rows: slice | Tensor, key_mask: Tensor | None, groups: int,
               dtype: torch.dtype) -> Tensor:
    """The bias of query rows ``rows`` repeated over ``groups`` key groups, -inf at padded keys (``key_mask``
    [B, 1, 1, G * L], True = attend): [H, B, rows, G * L]."""
    bias = pair_bias(rows).to(dtype)
    if groups > 1:
        bias = bias.repeat(1, 1, 1, groups)
    if key_mask is not None:  # an add: its backward is the identity (masked_fill's is another pass)
        pad = torch.zeros(key_mask.shape, dtype=dtype, device=bias.device).masked_fill_(~key_mask, float("-inf"))
        bias = bias + pad.view(1, bias.shape[1], 1, -1)
    return bias


def exact_biased_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, dropout_p: float = 0.0) -> Tensor:
    """q [B, H, Lq, dh], k / v [B, H, Lk, dh], bias [H, B, Lq, Lk] -> [B, H, Lq, dh] with every gradient."""
    heads, b, lq, lk = bias.shape
    dh = q.shape[-1]
    qh, kh, vh = (t.transpose(0, 1).reshape(heads * b, -1, dh) for t in (q, k, v))
    scores = torch.baddbmm(bias.reshape(heads * b, lq, lk), qh, kh.transpose(1, 2), alpha=dh ** -0.5)
    weights = torch.softmax(scores, dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return torch.bmm(weights, vh).view(heads, b, lq, dh).transpose(0, 1)


def biased_attention(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, dropout_p: float,
                     pair_bias: PairBias, start: int, groups: int = 1) -> Tensor:
    """Attention of the query chunk ``q`` [B, H, Lq, dh] (rows ``start : start + Lq`` of its piece) over k / v
    [B, H, G * L, dh] (``groups`` G) with ``pair_bias`` added to the scores -> [B, H, Lq, dh]."""
    bias = chunk_bias(pair_bias, slice(start, start + q.shape[2]), key_mask, groups, q.dtype)
    if q.is_cuda or not bias.requires_grad:  # CUDA: SDPA takes the bias with its gradient; no gradient: tiled
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.transpose(0, 1), dropout_p=dropout_p)
    return exact_biased_attention(q, k, v, bias, dropout_p)
