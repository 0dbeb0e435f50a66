"""fair-esm ESM-2 -> Hugging Face ``EsmModel`` (same weights), so both paths can be compared on one checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import torch

# fair-esm ESM2 parameter name -> transformers EsmModel name ({i} = layer index)
_LAYER_KEYS = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
}


def esm2_state_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a fair-esm ``ESM2`` state dict to ``EsmModel`` names (contact head, LM head and rotary buffers,
    which embeddings do not use or which transformers recomputes, are dropped)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "embed_tokens.weight":
            out["embeddings.word_embeddings.weight"] = value
        elif key.startswith("emb_layer_norm_after."):
            out["encoder." + key] = value
        elif key.startswith("layers.") and "rot_emb" not in key:
            _, i, rest = key.split(".", 2)
            module, param = rest.rsplit(".", 1)
            out[f"encoder.layer.{i}.{_LAYER_KEYS[module]}.{param}"] = value
    return out


def fair_esm2_to_hf(model: torch.nn.Module, alphabet, out_dir: str | os.PathLike) -> Path:
    """Write fair-esm ``ESM2`` ``model`` as a ``save_pretrained`` directory (``EsmModel`` + ``EsmTokenizer`` over
    the same alphabet) loadable with ``get_backbone("hf", model=out_dir)``; returns ``out_dir``."""
    from transformers import EsmConfig, EsmModel, EsmTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(alphabet.all_toks) + "\n")
    cfg = EsmConfig(vocab_size=len(alphabet.all_toks), hidden_size=model.embed_dim, num_hidden_layers=model.num_layers,
                    num_attention_heads=model.attention_heads, intermediate_size=4 * model.embed_dim,
                    max_position_embeddings=1026, position_embedding_type="rotary", layer_norm_eps=1e-5,
                    pad_token_id=alphabet.padding_idx, mask_token_id=alphabet.mask_idx, token_dropout=model.token_dropout,
                    emb_layer_norm_before=False)
    hf = EsmModel(cfg, add_pooling_layer=False)
    missing, _ = hf.load_state_dict(esm2_state_to_hf(model.state_dict()), strict=False)
    left = [k for k in missing if "rotary" not in k and "inv_freq" not in k and not k.startswith("contact_head")]
    if left:
        raise ValueError(f"fair-esm -> EsmModel conversion left parameters unset: {', '.join(left[:5])}")
    hf.save_pretrained(out)
    EsmTokenizer(str(out / "vocab.txt")).save_pretrained(out)
    return out
