"""fair-esm's ESM-IF1 (GVP-Transformer) structure encoder as a frozen per-residue backbone."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pa_geo.backbones._esm_compat import import_inverse_folding
from pa_geo.backbones._weights import WeightFileBackbone
from pa_geo.backbones.base import Layer, Prepared, chain_segments, register_backbone, resolve_layers
from pa_geo.backbones.esm_checkpoints import load_esm_model, resolve_esm_checkpoint
from pa_geo.backbones.esm_if1_fast import if1_encoder_forward
from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein

# Names the featurisation (pose-invariant, see ESMIF1Backbone) in the fingerprint: embeddings of another
# featurisation get other cache keys, and checkpoints trained on them are refused.
IF1_FEATURES = "if1_encoder_forward: pose-invariant features"


def complex_coords(protein: Protein, target: np.ndarray, others: Sequence[np.ndarray], gap: int) -> np.ndarray:
    """``[L_t + sum(gap + L_o), 3, 3]`` float32 N/CA/C coordinates: the target chain first, then each other chain
    after ``gap`` all-NaN rows (fair-esm ``multichain_util._concatenate_coords``); the target's rows come first."""
    parts = [protein.backbone[target, :3]]
    for idx in others:
        parts += [np.full((gap, 3, 3), np.nan, np.float32), protein.backbone[idx, :3]]
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32))


@register_backbone("esm_if1")
class ESMIF1Backbone(WeightFileBackbone):
    """ESM-IF1 encoder output per residue (512-d for ``esm_if1_gvp4_t16_142M_UR50``).

    Layer ``k`` = hidden state after encoder transformer layer ``k`` (0 = input embedding); the last layer (default)
    is fair-esm's ``encoder_out`` (after the final layer norm), i.e. ``get_encoder_output``. Each chain is encoded
    separately; with ``complex_context`` the protein's other chains are appended after ``chain_gap`` NaN rows as
    context (fair-esm ``get_encoder_output_for_complex``). Missing backbone atoms stay NaN (fair-esm masks them).
    The encoder runs :func:`~pa_geo.backbones.esm_if1_fast.if1_encoder_forward` (~2x less CPU time than fair-esm's
    forward) with ``pose_invariant=True``: fair-esm puts missing atoms (the BOS / EOS rows around each chain, the
    gap rows between chains, atoms absent from the file) at the coordinate origin and featurises them, so its
    embeddings change when the chain is rotated or translated; here every input feature that would read one
    (the first residue's phi, the last residue's psi, CA directions to a missing neighbour, the side-chain
    direction and local frame of a residue missing N, CA or C) takes fair-esm's padding value instead, and the
    embeddings do not depend on the pose. All other features, and the network, are fair-esm's.

    Args:
        layers: ints, ``"all"`` or None (last encoder layer).
        model: fair-esm hub name (looked up offline in ``torch.hub.get_dir()/checkpoints``) or a local ``.pt`` path.
        complex_context: encode each chain with the other chains of its protein as context.
        chain_gap: NaN rows between concatenated chains (fair-esm uses 10).
    """

    level = "structure"
    default_model = "esm_if1_gvp4_t16_142M_UR50"
    width = 512
    # CPU time per residue, 24 real chains, 1 thread: 1 chain per forward 81.9 s, 1024 padded residues 82.3 s,
    # 2048 83.5 s, 4096 88.8 s: only short chains are grouped on CPU. GPUs need larger batches to fill.
    batch_tokens_by_device = {"cpu": 1024, "*": 8192}

    def __init__(self, layers: Sequence[int] | int | str | None = None, model: str | None = None,
                 complex_context: bool = True, chain_gap: int = 10) -> None:
        inverse_folding = import_inverse_folding()
        name = self.registry_name
        path = resolve_esm_checkpoint(model or self.default_model, name)
        net, alphabet = load_esm_model(path)
        if not isinstance(net, inverse_folding.gvp_transformer.GVPTransformerModel):
            raise ConfigError(f"{name}: {path} holds a {type(net).__name__}, not an ESM-IF1 GVPTransformerModel")
        n = int(net.encoder.num_layers)
        super().__init__(resolve_layers(name, layers, range(n + 1), n))
        self.encoder = net.encoder  # the decoder is never used
        self.alphabet = alphabet
        self._converter = inverse_folding.util.CoordBatchConverter(alphabet)
        self._num_layers = n
        self.complex_context = bool(complex_context)
        self.chain_gap = int(chain_gap)
        self._set_weights_file(path, int(net.encoder.embed_tokens.embedding_dim))

    def fingerprint_settings(self) -> tuple:
        return (self.complex_context, self.chain_gap, IF1_FEATURES)

    def _prepare_inputs(self, proteins: Sequence[Protein]) -> tuple[tuple[torch.Tensor, ...], list[tuple]]:
        """``((coords [B, T, 3, 3], confidence [B, T], padding_mask [B, T]), jobs)``: one padded row per chain
        (fair-esm's ``CoordBatchConverter``, BOS/EOS rows included); ``jobs[b] = (protein index, residue
        indices)``."""
        jobs, coords_list = [], []
        for pi, p in enumerate(proteins):
            segs = chain_segments(p)
            for ci, idx in enumerate(segs):
                others = [s for cj, s in enumerate(segs) if cj != ci] if self.complex_context else []
                jobs.append((pi, idx))
                coords_list.append(complex_coords(p, idx, others, self.chain_gap))
        coords, confidence, _, _, padding_mask = self._converter.from_lists(coords_list)
        return (coords, confidence, padding_mask), jobs

    def _embed_prepared(self, prepared: Prepared) -> list[dict[Layer, torch.Tensor]]:
        (coords, confidence, padding_mask), jobs = prepared.inputs
        dev, dt = self.device, self.weight_dtype
        need_states = any(layer != self._num_layers for layer in self.layers)
        enc = if1_encoder_forward(self.encoder, coords.to(dev, dt), padding_mask.to(dev), confidence.to(dev, dt),
                                  return_all_hiddens=need_states, pose_invariant=True)
        states = {layer: (enc["encoder_out"][0] if layer == self._num_layers else enc["encoder_states"][layer])
                  for layer in self.layers}  # each [T, B, D]
        return self._assemble_chains(prepared.proteins, jobs,
                                     lambda b, layer: states[layer][1: 1 + len(jobs[b][1]), b])
