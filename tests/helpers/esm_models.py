"""fair-esm models with random weights: tiny checkpoints in fair-esm's own on-disk format, and full-size
architectures in memory.

Each ``make_tiny_*`` writes ``path`` (atomically) and returns the freshly built model in eval mode, so a test can
compare what pa_geo loads from disk with the model's own forward. ``seed`` changes the weights.

``full_*``: fair-esm's constructors initialise 650 M parameters with several RNG passes (20-30 s on the shared test
box); here the model is built on the meta device, materialised uninitialised, and every parameter is filled from
one random block (rolled per parameter, scaled by 1/sqrt(fan-in)): random enough for equivalence tests, ~1 s.

:func:`fair_esm_pose_invariant` makes fair-esm's own ESM-IF1 forward featurise as pa_geo's ``esm_if1`` does.
"""
from __future__ import annotations

import contextlib
import os
from argparse import Namespace
from pathlib import Path
from typing import Iterator

import torch


def _save(obj: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def _no_regression(state: dict) -> dict:
    """Real checkpoints ship the contact regression separately (``<name>-contact-regression.pt``)."""
    return {k: v for k, v in state.items() if not k.startswith("contact_head.regression")}


def make_tiny_esm1b(path: str | os.PathLike, seed: int = 0, layers: int = 2, embed_dim: int = 32,
                    heads: int = 4, max_positions: int = 1024) -> torch.nn.Module:
    """An ESM-1b architecture (``roberta_large``) checkpoint ``{"args": Namespace, "model": state_dict}`` with the
    original fairseq key prefix ``encoder.sentence_encoder.``; returns the ``ProteinBertModel``."""
    import esm
    from esm.model.esm1 import ProteinBertModel

    torch.manual_seed(seed)
    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    args = Namespace(arch="roberta_large", layers=layers, embed_dim=embed_dim, ffn_embed_dim=2 * embed_dim,
                     attention_heads=heads, max_positions=max_positions, token_dropout=True,
                     emb_layer_norm_before=False)
    model = ProteinBertModel(args, alphabet).eval()
    with torch.no_grad():
        model.embed_tokens.weight[alphabet.mask_idx].zero_()  # fair-esm's loader zeroes it too
    ck_args = Namespace(arch="roberta_large", encoder_layers=layers, encoder_embed_dim=embed_dim,
                        encoder_ffn_embed_dim=2 * embed_dim, encoder_attention_heads=heads,
                        max_positions=max_positions, token_dropout=True, dropout=0.1)
    state = {f"encoder.sentence_encoder.{k}": v.clone() for k, v in _no_regression(model.state_dict()).items()}
    _save({"args": ck_args, "model": state}, path)
    return model


def make_tiny_esm2(path: str | os.PathLike, seed: int = 0, layers: int = 2, embed_dim: int = 32,
                   heads: int = 4) -> torch.nn.Module:
    """An ESM-2 checkpoint ``{"cfg": {"model": Namespace}, "model": state_dict}``; returns the ``ESM2`` model."""
    import esm
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=embed_dim, attention_heads=heads,
                 alphabet=esm.Alphabet.from_architecture("ESM-1b"), token_dropout=True).eval()
    cfg = Namespace(encoder_layers=layers, encoder_embed_dim=embed_dim, encoder_attention_heads=heads,
                    token_dropout=True)
    state = {f"encoder.sentence_encoder.{k}": v.clone() for k, v in _no_regression(model.state_dict()).items()}
    _save({"cfg": {"model": cfg}, "model": state}, path)
    return model


def make_tiny_esm_if1(path: str | os.PathLike, seed: int = 0, embed_dim: int = 32) -> torch.nn.Module:
    """A GVP-Transformer (ESM-IF1 architecture, small dims) checkpoint ``{"args": Namespace, "model": ...}`` with
    the argument names of ``esm_if1_gvp4_t16_142M_UR50``; returns the ``GVPTransformerModel``."""
    import esm

    from pa_geo.backbones._esm_compat import import_inverse_folding

    inverse_folding = import_inverse_folding()
    torch.manual_seed(seed)
    args = Namespace(arch="vqvae_invariant_gvp", encoder_embed_dim=embed_dim, decoder_embed_dim=embed_dim,
                     encoder_layers=2, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                     encoder_ffn_embed_dim=2 * embed_dim, decoder_ffn_embed_dim=2 * embed_dim, dropout=0.1,
                     attention_dropout=0.1, gvp_node_hidden_dim_scalar=16, gvp_node_hidden_dim_vector=4,
                     gvp_edge_hidden_dim_scalar=8, gvp_edge_hidden_dim_vector=1, gvp_num_encoder_layers=2,
                     gvp_top_k_neighbors=30, gvp_dropout=0.1)
    model = inverse_folding.gvp_transformer.GVPTransformerModel(
        args, esm.Alphabet.from_architecture("invariant_gvp")).eval()
    _save({"args": args, "model": {k: v.clone() for k, v in model.state_dict().items()}}, path)
    return model


# ---- full-size architectures, random weights -------------------------------------------------------------------
_BLOCK = 1 << 20


def materialize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give a meta-device fair-esm ``model`` real CPU storage and random weights; returns it in eval mode."""
    model.to_empty(device="cpu")
    block = torch.randn(2 * _BLOCK, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            flat = p.view(-1)
            shift = (7919 * i) % _BLOCK
            for start in range(0, flat.numel(), _BLOCK):
                n = min(_BLOCK, flat.numel() - start)
                flat[start:start + n] = block[shift:shift + n]
            if p.dim() >= 2:
                p.mul_(p.shape[-1] ** -0.5)
            elif name.endswith("weight"):  # layer norms around 1
                p.mul_(0.1).add_(1.0)
            else:
                p.mul_(0.1)
        for name, buf in model.named_buffers():
            if name.endswith("rot_emb.inv_freq"):  # fair-esm RotaryEmbedding's fixed frequencies
                dim = 2 * buf.numel()
                buf.copy_(1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))
            else:
                buf.zero_()
    return model.eval()


def full_esm1b() -> tuple[torch.nn.Module, object]:
    """ESM-1b (``esm1b_t33_650M_UR50S`` architecture: 33 x 1280, 20 heads), random weights."""
    import esm
    from esm.model.esm1 import ProteinBertModel

    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    args = Namespace(arch="roberta_large", layers=33, embed_dim=1280, ffn_embed_dim=5120, attention_heads=20,
                     max_positions=1024, emb_layer_norm_before=False, token_dropout=True)
    with torch.device("meta"):
        model = ProteinBertModel(args, alphabet)
    return materialize(model), alphabet


def full_esm2_650m() -> tuple[torch.nn.Module, object]:
    """ESM-2 (``esm2_t33_650M_UR50D`` architecture: 33 x 1280, 20 heads, rotary), random weights."""
    import esm
    from esm.model.esm2 import ESM2

    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    with torch.device("meta"):
        model = ESM2(num_layers=33, embed_dim=1280, attention_heads=20, alphabet=alphabet)
    return materialize(model), alphabet


def full_esm_if1() -> tuple[torch.nn.Module, object]:
    """ESM-IF1 (``esm_if1_gvp4_t16_142M_UR50`` arguments), random weights."""
    import esm

    from pa_geo.backbones._esm_compat import import_inverse_folding

    inverse_folding = import_inverse_folding()
    args = Namespace(arch="vqvae_invariant_gvp", encoder_embed_dim=512, decoder_embed_dim=512, encoder_layers=8,
                     decoder_layers=8, encoder_attention_heads=8, decoder_attention_heads=8,
                     encoder_ffn_embed_dim=2048, decoder_ffn_embed_dim=2048, dropout=0.1, attention_dropout=0.1,
                     gvp_node_hidden_dim_scalar=1024, gvp_node_hidden_dim_vector=256, gvp_edge_hidden_dim_scalar=32,
                     gvp_edge_hidden_dim_vector=1, gvp_num_encoder_layers=4, gvp_top_k_neighbors=30, gvp_dropout=0.1)
    alphabet = esm.Alphabet.from_architecture("invariant_gvp")
    with torch.device("meta"):
        model = inverse_folding.gvp_transformer.GVPTransformerModel(args, alphabet)
    return materialize(model), alphabet


# ---- fair-esm's ESM-IF1 with pa_geo's pose-invariant featurisation -------------------------------------------
@contextlib.contextmanager
def fair_esm_pose_invariant() -> Iterator[None]:
    """Within the block, fair-esm's own ESM-IF1 encoders (``encoder(...)``, ``get_encoder_output``, ...) featurise
    as :func:`pa_geo.backbones.esm_if1_fast.if1_encoder_forward` does with ``pose_invariant=True``: their node
    features, dihedral embeddings and local frames pad whatever reads a missing atom. Everything else runs as
    fair-esm wrote it; the reference ``esm_if1`` is compared with."""
    from pa_geo.backbones import esm_if1_fast as pa
    from pa_geo.backbones._esm_compat import import_inverse_folding

    inverse_folding = import_inverse_folding()
    encoder_module, features = inverse_folding.gvp_transformer_encoder, inverse_folding.features
    Encoder, Featurizer, Dihedrals = (encoder_module.GVPTransformerEncoder, features.GVPInputFeaturizer,
                                      features.DihedralFeatures)
    saved = (Encoder.forward_embedding, Featurizer.__dict__["get_node_features"], Dihedrals.__dict__["_dihedrals"],
             encoder_module.get_rotation_frames)
    original_dihedrals = Dihedrals._dihedrals
    state: dict[str, torch.Tensor] = {}

    def forward_embedding(self, coords, padding_mask, confidence):
        state["atom_ok"] = torch.isfinite(coords).all(-1)  # [B, L, 3]: the atoms fair-esm is about to zero
        return saved[0](self, coords, padding_mask, confidence)

    def get_node_features(coords, coord_mask, with_coord_mask=True):
        return pa.pose_invariant_node_features(coords, state["atom_ok"], with_coord_mask)

    def dihedrals(X, eps=1e-7):
        return pa.pose_invariant_dihedrals(original_dihedrals(X, eps), state["atom_ok"])

    Encoder.forward_embedding = forward_embedding
    Featurizer.get_node_features = staticmethod(get_node_features)
    Dihedrals._dihedrals = staticmethod(dihedrals)
    encoder_module.get_rotation_frames = lambda coords: pa.pose_invariant_frames(coords, state["atom_ok"])
    try:
        yield
    finally:
        (Encoder.forward_embedding, Featurizer.get_node_features, Dihedrals._dihedrals,
         encoder_module.get_rotation_frames) = saved
