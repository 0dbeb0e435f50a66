"""``Protein -> Data`` with a fixed recipe (``data.graph`` of a config): the graph source the task kinds build from."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
from torch_geometric.data import Data

from pa_geo import graphs
from pa_geo.datasets.embedded import stamp_digests
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import ConfigError, DatasetError
from pa_geo.graphs.ligand import smiles_graph
from pa_geo.graphs.schema import GRAPH_FORMAT
from pa_geo.io.protein import Protein

GRAPH_KINDS = ("residue", "atom")


def protein_fingerprint(p: Protein) -> str:
    """``protein:<id>:<16 hex>``: the protein's id, sequence, chains, numbering, coordinates and atoms (what its
    graph is built from)."""
    h = hashlib.sha256()
    h.update(p.id.encode())
    h.update(p.sequence.encode())
    h.update("\x00".join(map(str, p.chain_ids.tolist())).encode())
    h.update(np.ascontiguousarray(p.residue_numbers, np.int64).tobytes())
    h.update(np.ascontiguousarray(p.backbone, np.float32).tobytes())
    h.update(np.ascontiguousarray(p.atoms.coords, np.float32).tobytes())
    h.update(b"1" if p.has_structure else b"0")
    return f"protein:{p.id}:{h.hexdigest()[:16]}"


class GraphBuilder:
    """Graphs of proteins and ligands for one recipe: ``kind`` (``residue`` | ``atom``) + the builder's keyword
    arguments; ``ligand`` (optional dict) holds the atom-graph keyword arguments of protein-ligand tasks' ligands.

    ``protein(p)`` returns the graph stamped with the protein's embedding digests
    (:func:`pa_geo.datasets.embedded.stamp_digests`); the last ``cache_size`` proteins' graphs are reused (a protein
    appearing in many records, e.g. PPI pairs, is built once per build).
    """

    def __init__(self, kind: str = "residue", ligand: dict[str, Any] | None = None, cache_size: int = 1024,
                 **kwargs: Any) -> None:
        if kind not in GRAPH_KINDS:
            raise ConfigError(f"unknown graph kind {kind!r}; expected one of {', '.join(GRAPH_KINDS)}")
        self.kind = kind
        self.kwargs = dict(kwargs)
        self.ligand_kwargs = dict(ligand or {})
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, Data] = OrderedDict()

    @property
    def function(self) -> Callable[..., Data]:
        """``residue_graph`` or ``atom_graph``."""
        return graphs.residue_graph if self.kind == "residue" else graphs.atom_graph

    @property
    def settings(self) -> dict[str, Any]:
        """The recipe as plain values (part of the example-store key)."""
        return {"kind": self.kind, "kwargs": self.kwargs, "ligand": self.ligand_kwargs, "format": GRAPH_FORMAT}

    def key(self) -> str:
        """16-hex hash of :attr:`settings`."""
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def __call__(self, protein: Protein) -> Data:
        """The protein's graph (fields: ``pa_geo.graphs.schema``), without digests."""
        return self.function(protein, **self.kwargs)

    def protein(self, protein: Protein) -> Data:
        """The protein's graph with its embedding digests (shared with other records: never modify it)."""
        fp = protein_fingerprint(protein)
        graph = self._cache.get(fp)
        if graph is None:
            graph = stamp_digests(self(protein), protein)
            self._cache[fp] = graph
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(fp)
        return graph

    def ligand(self, rec: TaskRecord) -> Data:
        """The ligand's graph: the atom graph of ``rec.ligand`` (a Protein holding an atom table only, ATOM3D LBA),
        else the bond graph of ``rec.extra["smiles"]`` (PEER PDBbind / BindingDB)."""
        if rec.ligand is not None:
            return graphs.atom_graph(rec.ligand, **self.ligand_kwargs)
        smiles = rec.extra.get("smiles")
        if not isinstance(smiles, str):
            raise DatasetError(f"record {rec.id}: protein-ligand record has neither a ligand structure nor a SMILES")
        return smiles_graph(smiles, f"{rec.id}:ligand")
