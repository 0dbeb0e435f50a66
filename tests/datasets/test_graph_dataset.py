"""GraphDataset: builds once, reuses the processed file, rebuilds when the builder settings change."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from pa_geo.datasets.atom3d import Atom3DLMDB
from pa_geo.datasets.atom3d_frames import frame_to_protein
from pa_geo.datasets.graph_dataset import GraphDataset
from pa_geo.errors import DatasetError
from pa_geo.graphs import AtomGraph, atom_graph, residue_graph

pytest.importorskip("torch_cluster")
LEGACY = Path(__file__).resolve().parents[1] / "data" / "atom3d" / "legacy_pdb_generic"


@pytest.fixture(scope="module")
def proteins():
    ds = Atom3DLMDB(LEGACY)
    return [frame_to_protein(ds[i]["atoms"], ds[i]["id"].split(".")[0]) for i in (0, 2, 6, 8)]


class Counting:
    """A builder that counts its calls (module-level class: picklable, stable qualified name)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0
        self.__qualname__ = f"Counting[{fn.__name__}]"

    def __call__(self, protein, **kw):
        self.calls += 1
        return self.fn(protein, **kw)


def test_builds_once_then_reuses(tmp_path, proteins):
    b = Counting(residue_graph)
    ds = GraphDataset(tmp_path, proteins, b, {"radius": 10.0})
    assert b.calls == ds.num_built == 4 and len(ds) == 4
    ref = residue_graph(proteins[1], radius=10.0)
    assert torch.equal(ds[1].edge_index, ref.edge_index) and torch.allclose(ds[1].edge_attr, ref.edge_attr)
    assert ds[1].protein_id == proteins[1].id
    files = sorted(p.name for p in (tmp_path / "processed").iterdir())
    assert files == [f"graphs_{ds.key}.json", f"graphs_{ds.key}.pt"]  # no temp files, no pre_transform.pt
    again = GraphDataset(tmp_path, proteins, b, {"radius": 10.0})
    assert b.calls == 4 and again.num_built == 0 and torch.equal(again[1].edge_index, ref.edge_index)
    other = GraphDataset(tmp_path, proteins, b, {"radius": 6.0})
    assert b.calls == 8 and other.key != ds.key and other[1].num_edges < ds[1].num_edges
    GraphDataset(tmp_path, proteins, b, {"radius": 10.0}, force_reload=True)
    assert b.calls == 12


def test_sources_change_key_and_transform_attaches_fields(tmp_path, proteins):
    a = GraphDataset(tmp_path, proteins[:2], residue_graph)
    b = GraphDataset(tmp_path, proteins[:3], residue_graph)
    assert a.key != b.key and len(b) == 3

    def add_label(g):
        g.y = torch.tensor([[float(g.num_nodes)]])
        return g

    c = GraphDataset(tmp_path, proteins[:2], residue_graph, transform=add_label)
    assert c.num_built == 0 and c[0].y.item() == proteins[0].__len__()


def test_atom_graphs_round_trip_and_batch(tmp_path, proteins):
    ds = GraphDataset(tmp_path, proteins, atom_graph, {"radius": 4.5})
    again = GraphDataset(tmp_path, proteins, atom_graph, {"radius": 4.5})
    assert again.num_built == 0 and isinstance(again[3], AtomGraph)
    batch = next(iter(DataLoader(again, batch_size=4)))
    sizes = [len(p) for p in proteins]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    expect = torch.cat([ds[i].atom2residue + int(offsets[i]) for i in range(4)])
    assert torch.equal(batch.atom2residue, expect) and batch.atom2residue.max() < sum(sizes)


def test_file_sources_use_loader(tmp_path, proteins):
    files = []
    for p in proteins[:2]:
        f = tmp_path / f"{p.id}.txt"
        f.write_text(p.id)
        files.append(f)
    by_id = {p.id: p for p in proteins}
    ds = GraphDataset(tmp_path / "ds", files, residue_graph, loader=lambda path: by_id[path.read_text()])
    assert [g.protein_id for g in ds] == [proteins[0].id, proteins[1].id]
    files[0].write_text(proteins[2].id)  # content (size / mtime) changed -> new key
    ds2 = GraphDataset(tmp_path / "ds", files, residue_graph, loader=lambda path: by_id[path.read_text()])
    assert ds2.key != ds.key and ds2[0].protein_id == proteins[2].id


def test_errors(tmp_path, proteins):
    with pytest.raises(DatasetError, match="at least one source"):
        GraphDataset(tmp_path, [], residue_graph)
    with pytest.raises(DatasetError, match="source file not found"):
        GraphDataset(tmp_path, [tmp_path / "nope.pdb"], residue_graph)
    with pytest.raises(DatasetError, match="expected a torch_geometric Data"):
        GraphDataset(tmp_path, proteins[:1], lambda p: {"not": "a graph"})
    ds = GraphDataset(tmp_path, proteins[:1], residue_graph)
    Path(ds.processed_paths[0]).write_bytes(b"truncated")
    with pytest.raises(DatasetError, match="force_reload"):
        GraphDataset(tmp_path, proteins[:1], residue_graph)


def test_structure_files_with_default_reader(tmp_path):
    from pa_geo.io import read_structure

    files = sorted((Path(__file__).resolve().parents[1] / "data" / "atom3d").glob("*.pdb.gz"))
    ds = GraphDataset(tmp_path, files, residue_graph, {"radius": 8.0})
    assert len(ds) == 3 and ds.num_built == 3
    ref = residue_graph(read_structure(files[2]), radius=8.0)
    assert torch.equal(ds[2].edge_index, ref.edge_index)
    assert GraphDataset(tmp_path, files, residue_graph, {"radius": 8.0}).num_built == 0
