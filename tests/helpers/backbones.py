"""Backbones registered for tests (``_test_slow``, ``_test_slow_struct``, ``_test_toy_esm``) on import: the registry
has them in every process that imports this module (subprocess jobs included)."""
from __future__ import annotations

import hashlib
import os
import time
from typing import Sequence

import torch

from pa_geo.backbones.base import Backbone, register_backbone
from pa_geo.io.protein import AMINO_ACIDS

LOG_ENV = "PA_GEO_TEST_EMBED_LOG"


@register_backbone("_test_slow")
class SlowBackbone(Backbone):
    """Deterministic per-residue features of the sequence (D=8 and D=4), ``delay`` seconds per batch.

    Appends ``id`` of every embedded protein to the file named by ``$PA_GEO_TEST_EMBED_LOG`` (when set), so a
    test can see exactly what was computed.
    """

    def __init__(self, layers: Sequence[int] = (1, 2), delay: float = 0.0, fail_on: str = "") -> None:
        super().__init__(layers)
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[int] = []

    @property
    def dims(self) -> dict[int, int]:
        return {layer: 8 if layer == 1 else 4 for layer in self.layers}

    @property
    def fingerprint(self) -> str:
        return "slow0001"

    def _embed_batch(self, proteins):
        if any(self.fail_on and self.fail_on in p.sequence for p in proteins):
            raise RuntimeError(f"cannot embed a sequence containing {self.fail_on}")
        self.calls.append(len(proteins))
        time.sleep(self.delay)
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a") as fh:
                fh.write("".join(f"{p.id}\n" for p in proteins))
        outs = []
        for p in proteins:
            idx = torch.tensor([AMINO_ACIDS.find(a) + 1 for a in p.sequence], dtype=torch.float32)
            pos = torch.arange(len(p), dtype=torch.float32)
            base = torch.stack([torch.sin(idx * (k + 1) + pos * 0.1) for k in range(8)], dim=1)
            outs.append({layer: base[:, : self.dims[layer]] * layer for layer in self.layers})
        return outs


@register_backbone("_test_toy_esm")
class ToyEsmBackbone(Backbone):
    """A tiny randomly initialised ESM-2 (2 layers, D=32) run as ONE padded batch, like the real ESM backbones."""

    def __init__(self, layers: Sequence[int] = (1, 2), seed: int = 0) -> None:
        import esm

        super().__init__(layers)
        torch.manual_seed(seed)
        self.alphabet = esm.Alphabet.from_architecture("ESM-1b")
        self.model = esm.model.esm2.ESM2(num_layers=2, embed_dim=32, attention_heads=4, alphabet=self.alphabet).eval()
        self.converter = self.alphabet.get_batch_converter()
        self._fp = hashlib.sha256(b"".join(t.numpy().tobytes() for t in self.model.state_dict().values())).hexdigest()

    @property
    def dims(self) -> dict[int, int]:
        return {layer: 32 for layer in self.layers}

    @property
    def fingerprint(self) -> str:
        return self._fp[:12]

    def _embed_batch(self, proteins):
        _, _, toks = self.converter([(p.id, p.sequence) for p in proteins])
        reps = self.model(toks, repr_layers=list(self.layers))["representations"]
        return [{layer: reps[layer][i, 1:len(p) + 1] for layer in self.layers} for i, p in enumerate(proteins)]


@register_backbone("_test_slow_struct")
class SlowStructureBackbone(SlowBackbone):
    """:class:`SlowBackbone` declared as a structure backbone (keys include coordinates and chains)."""

    level = "structure"
