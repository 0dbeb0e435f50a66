"""Task kinds: one class per kind of task behind one registry (``KINDS``); ``get_kind(spec)`` gives a spec's kind.

Kinds: ``protein``, ``residue``, ``contact`` (one protein), ``protein_pair``, ``mutation``, ``interface`` (two
proteins), ``ligand`` (protein + small molecule). See ``docs/ARCHITECTURE.md`` for the interface.
"""
from __future__ import annotations

from pa_geo.registry import Registry
from pa_geo.tasks.kinds.base import GraphSource, StepOutputs, TaskKind
from pa_geo.tasks.kinds.data import (ContactData, LigandData, PairData, ProteinData, ResidueData, TaskData, part_key,
                                     part_view)
from pa_geo.tasks.kinds.ligand import LigandKind
from pa_geo.tasks.kinds.pairs import InterfaceKind, MutationKind, ProteinPairKind
from pa_geo.tasks.kinds.single import ContactKind, ProteinKind, ResidueKind
from pa_geo.tasks.spec import TaskSpec

KINDS: Registry[type[TaskKind]] = Registry("task kind")
for _cls in (ProteinKind, ResidueKind, ContactKind, ProteinPairKind, MutationKind, InterfaceKind, LigandKind):
    KINDS.register(_cls.name, _cls)


def get_kind(spec: TaskSpec) -> TaskKind:
    """The kind object of ``spec`` (``spec.kind``, by name in ``KINDS``)."""
    return KINDS.get(spec.kind)(spec)


__all__ = ["KINDS", "ContactData", "ContactKind", "GraphSource", "InterfaceKind", "LigandData", "LigandKind",
           "MutationKind", "PairData", "ProteinData", "ProteinKind", "ProteinPairKind", "ResidueData", "ResidueKind",
           "StepOutputs", "TaskData", "TaskKind", "get_kind", "part_key", "part_view"]
