"""pa_geo's inference forwards (SDPA ESM, node-level GVP algebra for ESM-IF1) against fair-esm's own forwards.

Tiny random checkpoints and the full-size architectures (random weights, one chain): every compared row within
1e-4 (float32). Padded batches compare only real rows (padding rows are never used). ESM-IF1 runs with
``pose_invariant=False`` here, i.e. with fair-esm's own featurisation (tests/backbones/test_backbone_esm_if1.py
covers the pose-invariant one).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pa_geo.backbones.esm_fast import esm_representations, supports_fast_forward
from pa_geo.backbones.esm_if1_fast import if1_encoder_forward, supports_fast_gvp
from tests.helpers.esm_models import (full_esm1b, full_esm2_650m, full_esm_if1, make_tiny_esm1b, make_tiny_esm2,
                                       make_tiny_esm_if1)
from tests.helpers.proteins import structuredb_chains

ATOL = 1e-4


def _tokens(alphabet, seqs: list[str], mask_at: int | None = None) -> torch.Tensor:
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(seqs)])
    if mask_at is not None:  # a <mask> token exercises fair-esm's token-dropout rescaling
        tokens[0, mask_at] = alphabet.mask_idx
    return tokens


def _max_diff_esm(model, tokens: torch.Tensor, layers: list[int]) -> float:
    with torch.inference_mode():
        ref = model(tokens, repr_layers=layers)["representations"]
        out = esm_representations(model, tokens, layers)
    assert sorted(out) == sorted(layers)
    real = tokens.ne(model.padding_idx)
    return max(float((ref[k] - out[k]).abs()[real].max()) for k in layers)


@pytest.mark.parametrize("make", [make_tiny_esm1b, make_tiny_esm2])
def test_tiny_esm_padded_batch_equals_fair_esm(tmp_path, make):
    import esm

    model = make(tmp_path / "m.pt", layers=3)
    assert supports_fast_forward(model)
    seqs = [p.sequence for p in structuredb_chains()]  # 20, 77, 146 residues: two padded rows
    tokens = _tokens(esm.Alphabet.from_architecture("ESM-1b"), seqs, mask_at=4)
    assert _max_diff_esm(model, tokens, [0, 1, 2, 3]) <= ATOL
    single = _tokens(esm.Alphabet.from_architecture("ESM-1b"), seqs[1:2])  # no padding: unmasked SDPA path
    assert _max_diff_esm(model, single, [3]) <= ATOL


def test_esm_fast_forward_depends_on_each_residue(tmp_path):
    import esm

    model = make_tiny_esm2(tmp_path / "m.pt")
    alphabet = esm.Alphabet.from_architecture("ESM-1b")
    seq = structuredb_chains()[1].sequence
    mutant = seq[:30] + ("A" if seq[30] != "A" else "G") + seq[31:]
    with torch.inference_mode():
        a = esm_representations(model, _tokens(alphabet, [seq]), [2])[2][0]
        b = esm_representations(model, _tokens(alphabet, [mutant]), [2])[2][0]
    assert (a[31] - b[31]).abs().max() > 1e-3  # the mutated residue's row (BOS is row 0)
    assert (a[5] - b[5]).abs().max() > 0  # attention carries it to other rows


def test_esm1_falls_back_to_fair_esm_forward(tmp_path):
    import esm
    from argparse import Namespace
    from esm.model.esm1 import ProteinBertModel

    torch.manual_seed(0)
    alphabet = esm.Alphabet.from_architecture("ESM-1")
    args = Namespace(arch="protein_bert_base", layers=2, embed_dim=32, ffn_embed_dim=64, attention_heads=4,
                     max_positions=1024, final_bias=True)
    model = ProteinBertModel(args, alphabet).eval()
    assert not supports_fast_forward(model)
    assert _max_diff_esm(model, _tokens(alphabet, ["MKTAYIAKQR", "MKV"]), [1, 2]) == 0.0


def _if1_inputs(alphabet, chains, nan_row: int | None = None):
    from pa_geo.backbones._esm_compat import import_inverse_folding

    conv = import_inverse_folding().util.CoordBatchConverter(alphabet)
    coords = [np.array(p.backbone[:, :3], np.float32) for p in chains]
    if nan_row is not None:
        coords[0][nan_row] = np.nan  # a residue without coordinates
    batch, confidence, _, _, padding_mask = conv.from_lists(coords)
    return batch, padding_mask, confidence


def _max_diff_if1(encoder, coords, padding_mask, confidence) -> float:
    with torch.inference_mode():
        ref = encoder(coords, padding_mask, confidence, return_all_hiddens=True)
        out = if1_encoder_forward(encoder, coords, padding_mask, confidence, return_all_hiddens=True,
                                  pose_invariant=False)
    real = ~padding_mask.T
    pairs = list(zip(ref["encoder_states"], out["encoder_states"])) + [(ref["encoder_out"][0],
                                                                         out["encoder_out"][0])]
    assert len(out["encoder_states"]) == encoder.num_layers + 1
    return max(float((a - b).abs()[real].max()) for a, b in pairs)


def test_tiny_esm_if1_padded_batch_equals_fair_esm(tmp_path):
    import esm

    model = make_tiny_esm_if1(tmp_path / "if1.pt")
    assert supports_fast_gvp(model.encoder)
    inputs = _if1_inputs(esm.Alphabet.from_architecture("invariant_gvp"), structuredb_chains(), nan_row=7)
    assert _max_diff_if1(model.encoder, *inputs) <= ATOL


def test_tiny_esm_if1_runs_fair_esm_gvp_layers_where_the_fast_algebra_does_not_apply(tmp_path, monkeypatch):
    import esm

    from pa_geo.backbones import esm_if1_fast

    model = make_tiny_esm_if1(tmp_path / "if1.pt")
    inputs = _if1_inputs(esm.Alphabet.from_architecture("invariant_gvp"), structuredb_chains()[:2], nan_row=7)
    with torch.inference_mode():
        fast = if1_encoder_forward(model.encoder, *inputs)["encoder_out"][0]
    monkeypatch.setattr(esm_if1_fast, "supports_fast_gvp", lambda encoder: False)
    assert _max_diff_if1(model.encoder, *inputs) <= ATOL
    with torch.inference_mode():
        slow = if1_encoder_forward(model.encoder, *inputs)["encoder_out"][0]
    real = ~inputs[1].T
    assert float((fast - slow).abs()[real].max()) <= ATOL


@pytest.mark.slow
@pytest.mark.parametrize("build", [full_esm1b, full_esm2_650m])
def test_full_size_esm_one_chain_equals_fair_esm(build):
    model, alphabet = build()
    tokens = _tokens(alphabet, [structuredb_chains()[1].sequence[:48]], mask_at=3)
    assert _max_diff_esm(model, tokens, [0, 17, 33]) <= ATOL


@pytest.mark.slow
def test_full_size_esm_if1_one_chain_equals_fair_esm():
    model, alphabet = full_esm_if1()
    assert supports_fast_gvp(model.encoder)
    inputs = _if1_inputs(alphabet, structuredb_chains()[1:2], nan_row=10)
    assert _max_diff_if1(model.encoder, *inputs) <= ATOL
