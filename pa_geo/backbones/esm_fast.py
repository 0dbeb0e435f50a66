"""An inference-only forward pass for fair-esm's ESM-1b and ESM-2 that gives fair-esm's ``representations``.

It reads the weights of fair-esm's own modules (nothing is copied or patched) and differs from
``model(tokens, repr_layers=...)`` only in how the same function is computed:

* attention through ``F.scaled_dot_product_attention`` (fused kernels: no ``[B, H, T, T]`` probability tensor in
  memory, unlike fair-esm's ``need_weights=True`` path, which also averages the weights over heads for nothing);
* one fused exact GELU (``F.gelu``) where fair-esm writes erf GELU as four elementwise ops;
* batch-first activations (no ``[T, B, D]`` transposes), no language-model head (embeddings never need logits);
* layers above the highest requested one are skipped.

ESM-1 (``model_version == "ESM-1"``: sinusoidal positions, bias_kv) keeps fair-esm's own forward.
``tests/backbones/test_backbone_esm_fast.py`` checks max |diff| <= 1e-4 against ``model(...)`` on tiny and
full-size architectures.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

_MASK_RATIO_TRAIN = 0.15 * 0.8  # fair-esm's token-dropout rescaling constant


def supports_fast_forward(model: torch.nn.Module) -> bool:
    """True for fair-esm ``ESM2`` and ESM-1b ``ProteinBertModel`` (the models :func:`esm_representations` runs)."""
    from esm.model.esm1 import ProteinBertModel
    from esm.model.esm2 import ESM2

    if isinstance(model, ESM2):
        return True
    return isinstance(model, ProteinBertModel) and model.model_version == "ESM-1b"


def _embed(model: torch.nn.Module, tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """fair-esm's input embedding ``[B, T, D]`` (token scale, token-dropout rescaling, learned positions for
    ESM-1b, padding rows zeroed)."""
    x = model.embed_scale * model.embed_tokens(tokens)
    is_esm2 = not hasattr(model, "model_version")
    if model.token_dropout if is_esm2 else getattr(model.args, "token_dropout", False):
        masked = tokens == model.mask_idx
        x = x.masked_fill(masked.unsqueeze(-1), 0.0)
        observed = masked.sum(-1).to(x.dtype) / (~padding_mask).sum(-1)
        x = x * (1 - _MASK_RATIO_TRAIN) / (1 - observed)[:, None, None]
    if not is_esm2:
        x = x + model.embed_positions(tokens)
        if model.emb_layer_norm_before:
            x = model.emb_layer_norm_before(x)
    return x * (1 - padding_mask.unsqueeze(-1).type_as(x))


def _attention(attn: torch.nn.Module, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """fair-esm ``MultiheadAttention`` self-attention (no bias_kv, no dropout) on ``x [B, T, D]`` -> ``[B, T, D]``;
    ``keep [B, 1, 1, T]`` bool (True = real token) or None when nothing is padded."""
    B, T, D = x.shape
    H, hd = attn.num_heads, attn.head_dim
    q = attn.q_proj(x).view(B, T, H, hd).transpose(1, 2)
    k = attn.k_proj(x).view(B, T, H, hd).transpose(1, 2)
    v = attn.v_proj(x).view(B, T, H, hd).transpose(1, 2)
    if attn.rot_emb is not None:  # ESM-2: rotary positions on [B, H, T, hd] (the sequence axis is -2)
        q, k = attn.rot_emb(q, k)
        q, k = q.to(v.dtype), k.to(v.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=attn.scaling)
    return attn.out_proj(out.transpose(1, 2).reshape(B, T, D))


def _layer(layer: torch.nn.Module, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """fair-esm ``TransformerLayer`` (pre-norm attention block, then pre-norm GELU FFN), ``[B, T, D]``."""
    x = x + _attention(layer.self_attn, layer.self_attn_layer_norm(x), keep)
    return x + layer.fc2(F.gelu(layer.fc1(layer.final_layer_norm(x))))


def esm_representations(model: torch.nn.Module, tokens: torch.Tensor,
                        repr_layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """``{layer: [B, T, D]}`` equal (fp32: within 1e-4) to ``model(tokens, repr_layers)["representations"]``.

    ``tokens [B, T]`` int64 (BOS/EOS/padding as fair-esm's batch converter makes them); layer 0 = embeddings,
    ``num_layers`` = last layer after the final layer norm. Models :func:`supports_fast_forward` rejects run
    fair-esm's own forward.
    """
    wanted = sorted(set(int(layer) for layer in repr_layers))
    if not supports_fast_forward(model):
        return dict(model(tokens, repr_layers=wanted)["representations"])
    padding_mask = tokens.eq(model.padding_idx)
    keep = (~padding_mask)[:, None, None, :] if bool(padding_mask.any()) else None
    x = _embed(model, tokens, padding_mask)
    out: dict[int, torch.Tensor] = {}
    if 0 in wanted:
        out[0] = x
    last = len(model.layers)
    for i, layer in enumerate(model.layers[: max(wanted)], start=1):
        x = _layer(layer, x, keep)
        if i in wanted:
            out[i] = model.emb_layer_norm_after(x) if i == last else x
    return out
