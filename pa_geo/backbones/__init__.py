"""Frozen per-residue encoders behind one interface: ``get_backbone(name, layers=...)`` -> :class:`Backbone`.

Registered: ``esm1b`` / ``esm2`` (fair-esm sequence models), ``esm_if1`` (fair-esm inverse folding encoder),
``hf`` (Hugging Face ESM-2 / ProtBert / ProtT5 / Ankh), ``proteinmpnn``, ``proteinmpnn_ca`` (CA-only ProteinMPNN),
``unirep``, ``near``, ``onehot``, ``blosum62``. Heavy libraries are imported only when a backbone is built, so
importing this package is cheap.
"""
from pa_geo.backbones import (esm_if1, esm_sequence, hf, near, proteinmpnn,  # noqa: F401  (registers)
                              residue_encodings, unirep)
from pa_geo.backbones.base import (Backbone, Layer, available_backbones, get_backbone, register_backbone,
                                   resolve_layers)

__all__ = ["Backbone", "Layer", "available_backbones", "get_backbone", "register_backbone", "resolve_layers"]
