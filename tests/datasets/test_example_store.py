"""The on-disk example store: exact round trips, compact dtypes, streamed builds that skip bad records, atomic
folders, reads in DataLoader workers with the epoch passed through."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from pa_geo.datasets.example_store import (ExampleStore, StoredDataset, build_store, decode_example, encode_example,
                                           files_fingerprint)
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.errors import DatasetError
from pa_geo.graphs import residue_graph
from pa_geo.tasks.kinds.data import PairData, ResidueData
from tests.helpers import STRUCTUREDB


@pytest.fixture(scope="module")
def graphs() -> list:
    return [residue_graph(r.protein, radius=8.0) for r in load_structuredb(STRUCTUREDB, max_chains=6)]


def _example(g, i: int) -> ResidueData:
    return ResidueData.from_parts({"": g}, record_id=f"r{i}", node_y=torch.arange(g.num_nodes) % 3,
                                  node_y_mask=torch.ones(g.num_nodes, dtype=torch.bool), extra_target=f"t{i % 2}")


def test_round_trip_is_exact_and_compact(graphs) -> None:
    d = _example(graphs[0], 0)
    d.empty = torch.zeros(0, 3)
    d.big = torch.tensor([2 ** 40, -1])  # does not fit int32: stored as int64
    blob = encode_example(d)
    back = decode_example(bytearray(blob))
    assert type(back) is ResidueData and set(back.keys()) == set(d.keys())
    for key in d.keys():
        a, b = d[key], back[key]
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape, key
            tol = 1e-3 if key in ("edge_attr", "geom") else 0.0
            assert torch.allclose(a.float(), b.float(), atol=tol, rtol=0), key
        else:
            assert a == b, key
    full = sum(t.numel() * t.element_size() for t in d.values() if isinstance(t, torch.Tensor))
    assert len(blob) < 0.6 * full  # int32 indices, float16 edge and geometry features
    assert len(encode_example(d, edge_float16=False)) > len(blob)
    with pytest.raises(DatasetError, match="field 'bad'"):
        encode_example(ResidueData(bad={1, 2}))


def test_build_streams_skips_bad_records_and_is_atomic(graphs, tmp_path: Path, caplog) -> None:
    consumed = []

    def records():
        for i, g in enumerate(graphs):
            consumed.append(i)
            yield DatasetError(f"file.lmdb[{i}]: unreadable") if i == 1 else (i, g)

    def to_data(rec):
        i, g = rec
        if i == 4:
            raise DatasetError(f"task t record r{i}: unknown neighbour residue CA")
        return _example(g, i)

    class Count:
        def __init__(self):
            self.n = 0

        def update(self, rec):
            self.n += 1

        def result(self):
            return self.n

    with caplog.at_level(logging.WARNING, logger="pa_geo.datasets"):
        store = build_store(tmp_path / "s", records(), to_data, lambda d: d.num_nodes, {"task": "t"}, what="t/train",
                            accumulators={"count": Count()})
    assert consumed == list(range(len(graphs)))  # the generator was read once
    assert len(store) == len(graphs) - 2 and store.meta["skipped"] == 2 and store.meta["count"] == len(graphs) - 2
    assert "unknown neighbour residue CA" in " ".join(store.meta["skipped_reasons"])
    assert "t/train: skipped 2 of 6 records" in caplog.text
    assert store.sizes.tolist() == [g.num_nodes for i, g in enumerate(graphs) if i not in (1, 4)]
    assert store.get(2).record_id == "r3" and torch.equal(store.get(2).edge_index, graphs[3].edge_index)
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folder left
    again = build_store(tmp_path / "s", [(0, graphs[0])], to_data, lambda d: d.num_nodes, {})
    assert len(again) == len(graphs) - 2  # a store already in place is kept
    with pytest.raises(DatasetError, match="no usable record"):
        build_store(tmp_path / "bad", [DatasetError("x: broken")], to_data, lambda d: 1, {})
    (tmp_path / "s" / "index.npy").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="not a readable example store"):
        ExampleStore(tmp_path / "s")


def test_dataset_reads_lazily_in_workers_with_the_epoch(graphs, tmp_path: Path) -> None:
    store = build_store(tmp_path / "s", list(enumerate(graphs)), lambda r: _example(r[1], r[0]),
                        lambda d: d.num_nodes, {})

    def prepare(data, index, epoch):
        data.seen_epoch = -1 if epoch is None else epoch
        data.index = index
        return data

    ds = StoredDataset(store, prepare, transform=lambda d: d, epoch_aware=True)
    assert len(ds) == len(graphs) and ds[(2, 5)].seen_epoch == 5 and ds[2].seen_epoch == -1
    assert StoredDataset(store, prepare)[(2, 5)].seen_epoch == -1  # evaluation splits ignore the epoch
    keys = [[(i, 3)] for i in range(len(graphs))]
    single = [b[0] for b in DataLoader(ds, batch_sampler=keys, collate_fn=lambda x: x)]
    multi = [b[0] for b in DataLoader(ds, batch_sampler=keys, collate_fn=lambda x: x, num_workers=2)]
    assert [d.record_id for d in multi] == [d.record_id for d in single] == [f"r{i}" for i in range(len(graphs))]
    assert all(d.seen_epoch == 3 and torch.equal(d.edge_attr, s.edge_attr) for d, s in zip(multi, single))


def test_pair_examples_and_fingerprints(graphs, tmp_path: Path) -> None:
    pair = PairData.from_parts({"a": graphs[0], "b": graphs[1]}, record_id="p", pair_index=torch.tensor([[1], [2]]))
    back = decode_example(bytearray(encode_example(pair)))
    assert type(back) is PairData and back.a__num_nodes == graphs[0].num_nodes and back.num_nodes == pair.num_nodes
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.csv").write_text("a")
    before = files_fingerprint(tmp_path / "d")
    (tmp_path / "d" / "f.csv").write_text("ab")
    assert files_fingerprint(tmp_path / "d") != before
    assert len(before) == 16


def test_a_reader_that_raises_for_one_record_goes_on(graphs, tmp_path: Path) -> None:
    """Streaming readers such as ``Atom3DRecords`` raise ``DatasetError`` from ``next()`` for a bad record and
    carry on with the next: the build skips and counts it instead of aborting the split."""

    class Reader:
        def __init__(self) -> None:
            self.i = -1

        def __iter__(self) -> "Reader":
            return self

        def __next__(self):
            self.i += 1
            if self.i >= len(graphs):
                raise StopIteration
            if self.i == 2:
                raise DatasetError(f"file.lmdb[{self.i}]: neighbour residue A:5 is not an amino acid")
            return self.i, graphs[self.i]

    store = build_store(tmp_path / "s", Reader(), lambda r: _example(r[1], r[0]), lambda d: d.num_nodes, {})
    assert len(store) == len(graphs) - 1 and store.meta["skipped"] == 1
    assert "file.lmdb[2]" in store.meta["skipped_reasons"][0]
