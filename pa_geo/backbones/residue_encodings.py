"""Weight-free residue encodings as backbones, always available: ``onehot`` and ``blosum62`` rows per residue."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pa_geo.backbones._weights import combine_digest
from pa_geo.backbones.base import Backbone, Layer, register_backbone, resolve_layers
from pa_geo.io.protein import AMINO_ACIDS, UNKNOWN_AA, Protein, residue_type_indices


class _TableBackbone(Backbone):
    """Per-residue lookup ``table[residue_type]``; the single layer is 0."""

    level = "sequence"

    def __init__(self, table: torch.Tensor, layers: Sequence[int] | int | str | None = None) -> None:
        super().__init__(resolve_layers(self.registry_name, layers, [0], 0))
        self.register_buffer("table", table.float())  # [21, D]: rows in AMINO_ACIDS order, then X

    @property
    def dims(self) -> dict[Layer, int]:
        return {0: int(self.table.shape[1])}

    @property
    def fingerprint(self) -> str:
        return combine_digest(self.registry_name, self.table.cpu().numpy().tobytes())

    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        table = self.table.cpu()
        return [{0: table[torch.from_numpy(residue_type_indices(p.sequence))]} for p in proteins]


@register_backbone("onehot")
class OneHotBackbone(_TableBackbone):
    """21-d one-hot residue type: the 20 standard amino acids (``AMINO_ACIDS`` order), then X (anything else)."""

    def __init__(self, layers: Sequence[int] | int | str | None = None) -> None:
        super().__init__(torch.eye(len(AMINO_ACIDS) + 1), layers)


def blosum62_table(include_x: bool = False) -> torch.Tensor:
    """``[21, 20 (+1)]`` BLOSUM62 scores (biotite's standard protein matrix, NCBI's BLOSUM62): row = residue
    (``AMINO_ACIDS`` then X), columns = ``AMINO_ACIDS`` (+ X when ``include_x``)."""
    from biotite.sequence.align import SubstitutionMatrix

    m = SubstitutionMatrix.std_protein_matrix()
    rows = list(AMINO_ACIDS) + [UNKNOWN_AA]
    cols = rows if include_x else list(AMINO_ACIDS)
    return torch.tensor(np.array([[m.get_score(r, c) for c in cols] for r in rows], np.float32))


@register_backbone("blosum62")
class BLOSUM62Backbone(_TableBackbone):
    """The residue's BLOSUM62 row (raw integer scores as float): 20-d, or 21-d with ``include_x``; unknown
    residues take the X row."""

    def __init__(self, layers: Sequence[int] | int | str | None = None, include_x: bool = False) -> None:
        super().__init__(blosum62_table(include_x), layers)
