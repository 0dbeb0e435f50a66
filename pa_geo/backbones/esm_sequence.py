"""fair-esm sequence models (ESM-1, ESM-1b, ESM-2) as frozen per-residue backbones, long chains windowed."""
from __future__ import annotations

from typing import Sequence

import torch

from pa_geo.backbones._weights import WeightFileBackbone
from pa_geo.backbones.base import Layer, Prepared, chain_jobs, register_backbone, resolve_layers
from pa_geo.backbones.esm_checkpoints import load_esm_model, resolve_esm_checkpoint
from pa_geo.backbones.esm_fast import esm_representations
from pa_geo.backbones.windows import blend_windows, plan_windows
from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein

ESM2_TRAINING_CROP = 1022  # ESM-2 has rotary positions (no hard limit) but was trained on 1022-residue crops


@register_backbone("esm1b")
class ESMSequenceBackbone(WeightFileBackbone):
    """A fair-esm ESM-1 / ESM-1b / ESM-2 model; layer ``k`` = output of transformer layer ``k`` (0 = embeddings,
    the last layer includes the final layer norm, as in fair-esm's ``representations``).

    Args:
        layers: ints (negative counts from the end), ``"all"`` (0..num_layers) or None (last layer).
        model: fair-esm hub name (looked up offline in ``torch.hub.get_dir()/checkpoints``) or a local ``.pt`` path.
        window: residues per forward pass (default: the model's positions, 1022 for ESM-1b / ESM-2).
        overlap: residues shared by consecutive windows of a longer chain (default ``window // 4``); overlaps are
            blended with linear ramps.
        compile: run the forward through ``torch.compile`` (dynamic shapes). Off by default: on CPU it measured
            no faster (benchmarks/embed.py) and costs a long first call.

    Each chain of a multi-chain protein is embedded on its own (rows returned in the protein's residue order).
    Residue letters outside the model's alphabet become ``X``. ESM-1b and ESM-2 run
    :func:`~pa_geo.backbones.esm_fast.esm_representations` (SDPA attention, fused GELU; fair-esm's numbers within
    1e-4 in float32); bfloat16 autocast on CUDA by default, float32 on CPU.
    """

    level = "sequence"
    default_model = "esm1b_t33_650M_UR50S"
    width = 1280
    half_on_cuda = True
    # CPU: 1024 padded residues per forward (long chains alone, short ones grouped; padding capped by the runner).
    # CPU time, 1 thread, real chains: ESM-2 35M (64 chains) 13.8 s one chain per forward, 13.2 s at 1024, 13.4 s
    # at 4096; ESM-1b (16 chains) 55.2 / 55.1 / 54.7 s. GPUs need large batches to fill.
    batch_tokens_by_device = {"cpu": 1024, "*": 16384}

    def __init__(self, layers: Sequence[int] | int | str | None = None, model: str | None = None,
                 window: int | None = None, overlap: int | None = None, compile: bool = False) -> None:
        from esm.model.esm1 import ProteinBertModel
        from esm.model.esm2 import ESM2

        name = self.registry_name
        path = resolve_esm_checkpoint(model or self.default_model, name)
        net, alphabet = load_esm_model(path)
        if not isinstance(net, (ProteinBertModel, ESM2)):
            raise ConfigError(f"{name}: {path} holds a {type(net).__name__}, not an ESM-1/1b/2 sequence model")
        n = int(net.num_layers)
        super().__init__(resolve_layers(name, layers, range(n + 1), n))
        self.model = net
        self.alphabet = alphabet
        self._bos = int(alphabet.prepend_bos)
        self._eos = int(alphabet.append_eos)
        if isinstance(net, ProteinBertModel):
            limit = int(getattr(net.args, "max_positions", 1024)) - self._bos - self._eos
        else:
            limit = ESM2_TRAINING_CROP
        self.window = int(window or limit)
        if self.window > limit or self.window < 1:
            raise ConfigError(f"{name}: window {self.window} outside 1..{limit} (the model's positions)")
        self.overlap = int(self.window // 4 if overlap is None else overlap)
        plan_windows(0, self.window, self.overlap)  # validates overlap
        self._letters = {t for t in alphabet.all_toks if len(t) == 1 and t.isalpha()}
        self._set_weights_file(path, int(net.embed_tokens.embedding_dim))
        self._forward = torch.compile(esm_representations, dynamic=True) if compile else esm_representations

    def fingerprint_settings(self) -> tuple:
        return (self.window, self.overlap)

    def max_residues(self) -> int | None:
        return self.window

    def _tokens(self, seqs: Sequence[str]) -> torch.Tensor:
        """``[B, T]`` int64 tokens: BOS? + residues + EOS?, right-padded with the padding index."""
        a = self.alphabet
        width = max(len(s) for s in seqs) + self._bos + self._eos
        tokens = torch.full((len(seqs), width), a.padding_idx, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids = [a.cls_idx] * self._bos + [a.get_idx(c if c in self._letters else "X") for c in s.upper()]
            ids += [a.eos_idx] * self._eos
            tokens[i, : len(ids)] = torch.tensor(ids)
        return tokens

    def _prepare_inputs(self, proteins: Sequence[Protein]) -> tuple[torch.Tensor, list[tuple]]:
        """``(tokens [N_windows, T], jobs)``: one row per window of every chain; ``jobs[j] = (protein index,
        residue indices, window plan, first row)`` per chain."""
        jobs = []
        items: list[str] = []
        for pi, idx, seq in chain_jobs(proteins):
            plan = plan_windows(len(seq), self.window, self.overlap)
            jobs.append((pi, idx, plan, len(items)))
            items.extend(seq[s:e] for s, e in plan)
        return self._tokens(items), jobs

    def _embed_prepared(self, prepared: Prepared) -> list[dict[Layer, torch.Tensor]]:
        tokens, jobs = prepared.inputs
        reps = self._forward(self.model, tokens.to(self.device, non_blocking=True), list(self.layers))

        def chain_rows(j: int, layer: Layer) -> torch.Tensor:
            _, idx, plan, first = jobs[j]
            pieces = [reps[layer][first + k, self._bos: self._bos + e - s].float().cpu()
                      for k, (s, e) in enumerate(plan)]
            return blend_windows(pieces, plan, len(idx), self.overlap)

        return self._assemble_chains(prepared.proteins, jobs, chain_rows)


@register_backbone("esm2")
class ESM2Backbone(ESMSequenceBackbone):
    """:class:`ESMSequenceBackbone` defaulting to ``esm2_t33_650M_UR50D``."""

    default_model = "esm2_t33_650M_UR50D"
