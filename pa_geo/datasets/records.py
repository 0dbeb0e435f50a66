"""A labelled example as dataset loaders yield it, before graphs are built (read by tasks and train)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pa_geo.io.protein import Protein


@dataclass
class TaskRecord:
    """One labelled example, before graphs are built.

    proteins    one Protein (single-protein tasks), two (protein-pair: A, B; mutation: wild type, mutant)
    ligand      small-molecule atoms as a Protein with an atom table only (protein-ligand tasks), else None
    label       graph level: float / int / np.ndarray [T]; node level: np.ndarray [L] (int64 classes or float32);
                residue-pair (contact): np.ndarray [L, L] bool contact map
    label_mask  node / residue-pair level: np.ndarray [L] bool of residues that carry a label (None = all)
    extra       task-specific fields (e.g. PSR target id for per-target metrics)
    """

    id: str
    proteins: list[Protein]
    label: Any
    ligand: Protein | None = None
    label_mask: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
