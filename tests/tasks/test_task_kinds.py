"""Task kinds: one Data per example batched by PyG's own collater (each part's index fields offset by its own node
counts), part views the encoder reads, contact targets, per-epoch interface pairs, head checks, record errors."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.datasets.records import TaskRecord
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.errors import ConfigError, DatasetError
from pa_geo.nn.baselines import MeanEmbeddingEncoder
from pa_geo.nn.heads import ContactHead, GraphHead, NodeHead
from pa_geo.tasks.kinds import get_kind
from pa_geo.formats.atom3d_ppi import sample_ppi_pairs
from pa_geo.tasks.spec import TaskSpec
from pa_geo.train.graph_builder import GraphBuilder
from tests.helpers import STRUCTUREDB

SPLITS = ["train", "valid", "test"]


@functools.lru_cache(maxsize=1)
def chains() -> list:
    return [r for r in load_structuredb(STRUCTUREDB, max_chains=60) if len(r.protein) <= 80][:4]


def spec(name: str, input_kind: str, level: str, label_type: str = "binary", n: int = 1, **options) -> TaskSpec:
    return TaskSpec(name, input_kind, level, label_type, n, ["auroc"], "auroc", SPLITS, options=options)


def test_pair_examples_batch_with_per_part_offsets() -> None:
    a, b, c = (r.protein for r in chains()[:3])
    kind = get_kind(spec("xp", "pair", "residue_pair"))
    builder = GraphBuilder(radius=8.0)
    recs = [TaskRecord("ab", [a, b], np.array([1, 0], np.float32), extra={"pair_index": np.array([[0, 5], [2, 3]])}),
            TaskRecord("cb", [c, b], np.array([1.0], np.float32), extra={"pair_index": np.array([[1], [4]])})]
    data = [kind.to_data(r, builder) for r in recs]
    batch = Batch.from_data_list(data)
    la, lb, lc = len(a), len(b), len(c)
    assert batch.pair_index.tolist() == [[0, 5, la + 1], [2, 3, lb + 4]]
    assert batch.a__edge_index.max() == la + lc - 1 and batch.b__edge_index.max() == 2 * lb - 1
    assert batch.a__chain_index.max() == 0  # a chain number, never offset
    views = kind.views(batch)
    assert views["a"].num_graphs == 2 and views["a"].ptr.tolist() == [0, la, la + lc]
    ref = Batch.from_data_list([builder(a), builder(c)])
    assert torch.equal(views["a"].edge_index, ref.edge_index) and torch.equal(views["a"].batch, ref.batch)
    assert torch.equal(views["b"].pos, torch.cat([builder(b).pos, builder(b).pos]))


def test_ligand_and_atom_parts_offset_their_own_indices() -> None:
    p = chains()[0].protein
    kind = get_kind(spec("lig", "ligand", "graph", "regression"))
    atom_builder = GraphBuilder(kind="atom", radius=4.5)
    recs = [TaskRecord(f"r{i}", [p], float(i), extra={"smiles": s}) for i, s in enumerate(["CCO", "c1ccccc1O"])]
    batch = Batch.from_data_list([kind.to_data(r, atom_builder) for r in recs])
    n_atoms = int(batch.ptr[1])
    assert batch.atom2residue[n_atoms:].min() == len(p)  # atom2residue offset by residues, not atoms
    assert batch.ligand__num_nodes.tolist() == [3, 7]
    assert batch.ligand__edge_index[:, 4:].min() >= 3 and batch.ligand__edge_index.max() == 9
    lig = kind.views(batch)["ligand"]
    assert lig.num_graphs == 2 and lig.batch.tolist() == [0] * 3 + [1] * 7 and lig.element.shape == (10,)


def test_contact_targets_follow_the_map_and_mask() -> None:
    recs, builder = [], GraphBuilder(radius=8.0)
    for r in chains()[:2]:
        ca = r.protein.ca
        cmap = np.linalg.norm(ca[:, None] - ca[None], axis=-1) < 8.0
        mask = np.ones(len(r.protein), bool)
        mask[3] = False
        recs.append(TaskRecord(r.protein.id, [r.protein], cmap, label_mask=mask))
    kind = get_kind(spec("c", "structure", "residue_pair"))
    batch = Batch.from_data_list([kind.to_data(r, builder) for r in recs])
    head = ContactHead(hidden_dim=8, min_separation=6)
    kind.bind_head(head, MeanEmbeddingEncoder({"pos": 3}))
    out = kind.forward(MeanEmbeddingEncoder({"pos": 3}), head, batch)
    preds, target, mask, kwargs = kind.outputs(batch, out)
    pairs = out[1]
    owner = batch.batch[pairs[0]]
    for k in range(pairs.shape[1]):
        b = int(owner[k])
        i, j = (int(x) - int(batch.ptr[b]) for x in pairs[:, k])
        assert target[k] == float(recs[b].label[i, j])
        assert mask[k] == (i != 3 and j != 3)
    assert target.sum() > 10 and preds.shape == target.shape and kwargs["pair_index"] is pairs


def test_interface_pairs_are_drawn_per_epoch_like_atom3d() -> None:
    a, b = chains()[0].protein, chains()[1].protein
    rng = np.random.default_rng(0)
    pos = np.stack([rng.choice(len(a), 30, replace=False), rng.choice(len(b), 30, replace=False)])
    pair_index, label = sample_ppi_pairs(pos, (len(a), len(b)), epoch=0, key="ab", seed=1)  # as the loader stores
    rec = TaskRecord("ab", [a, b], label, extra={"pair_index": pair_index, "positive_pairs": pos})
    kind = get_kind(spec("ppi", "pair", "residue_pair", positives_per_epoch=10, negatives_per_positive=1))
    base = kind.to_data(rec, GraphBuilder(radius=8.0))

    def draw(epoch):
        d = kind.prepare(base.clone(), 7, epoch, seed=1)
        assert "positive_pairs" not in d  # read by prepare only, never batched
        return d.pair_index[:, d.pair_y == 1], d.pair_index[:, d.pair_y == 0]

    p0, n0 = draw(0)
    assert p0.shape == (2, 10) and n0.shape == (2, 10)
    assert torch.equal(p0, torch.from_numpy(pair_index[:, label == 1]))  # epoch 0 = the stored draw
    positives = set(map(tuple, pos.T.tolist()))
    assert set(map(tuple, p0.T.tolist())) <= positives and not set(map(tuple, n0.T.tolist())) & positives
    assert torch.equal(draw(0)[0], p0)  # deterministic given seed and epoch (any worker)
    p1, n1 = draw(1)
    assert not torch.equal(p1, p0) and torch.equal(n1, n0)  # positives re-drawn, negatives fixed (random_state=0)
    assert torch.equal(draw(None)[0], p0)  # evaluation: the record's own (epoch-0) pairs
    untouched = get_kind(spec("given", "pair", "residue_pair")).prepare(base.clone(), 7, 3, seed=1)
    assert untouched.pair_index.shape == (2, 20)


def test_heads_must_fit_the_kind_and_the_task() -> None:
    encoder = MeanEmbeddingEncoder({"pos": 3})
    protein = get_kind(spec("g", "sequence", "graph", "multiclass", 4))
    with pytest.raises(ConfigError, match=r"task 'g' \(protein kind\) needs a head for graph inputs, got NodeHead"):
        protein.bind_head(NodeHead(), encoder)
    with pytest.raises(ConfigError, match="GraphHead out_dim=2 but the task has 4 output"):
        protein.bind_head(GraphHead(out_dim=2), encoder)
    head = GraphHead()
    protein.bind_head(head, encoder)
    assert (head.in_dim, head.out_dim) == (3, 4)


def test_records_that_do_not_fit_are_one_line_errors() -> None:
    p = chains()[0].protein
    builder = GraphBuilder(radius=8.0)
    with pytest.raises(DatasetError, match="task pp record r1: 1 proteins, a protein_pair task needs 2"):
        get_kind(spec("pp", "pair", "graph")).to_data(TaskRecord("r1", [p], 1), builder)
    with pytest.raises(DatasetError, match="record r2: contact map of shape"):
        get_kind(spec("c", "structure", "residue_pair")).to_data(TaskRecord("r2", [p], np.zeros((2, 2))), builder)
    with pytest.raises(DatasetError, match="record r3: pair_index outside"):
        get_kind(spec("x", "pair", "residue_pair")).to_data(
            TaskRecord("r3", [p, p], np.ones(1), extra={"pair_index": np.array([[0], [999]])}), builder)


def test_a_marked_residue_is_read_at_its_ca_atom() -> None:
    """ATOM3D RES: the head reads the encoder's node features at the central residue's CA, per example."""
    from pa_geo.graphs.schema import ATOM_NAME_INDEX

    proteins = [r.protein for r in chains()[:2]]
    recs = [TaskRecord(p.id, [p], 3 + k, extra={"center_index": 5 + k}) for k, p in enumerate(proteins)]
    res = TaskSpec("r", "structure", "graph", "multiclass", 20, ["accuracy"], "accuracy", SPLITS,
                   options={"center_key": "center_atom_index"})
    kind = get_kind(res)
    data = [kind.to_data(r, GraphBuilder(kind="atom", radius=4.5)) for r in recs]
    batch = Batch.from_data_list(data)
    for k, d in enumerate(data):
        c = int(d.center_index)
        assert int(d.atom2residue[c]) == 5 + k and int(d.atom_name_type[c]) == ATOM_NAME_INDEX["CA"]
        assert int(batch.center_index[k]) == c + int(batch.ptr[k])  # offset by the graphs before it
        assert data[k].extra_center_index == 5 + k  # plain record values are never offset
    encoder = MeanEmbeddingEncoder({"pos": 3})
    head = GraphHead()
    kind.bind_head(head, encoder)
    out = kind.forward(encoder, head, batch)
    moved = batch.clone()
    moved.pos = moved.pos.clone()
    moved.pos[batch.center_index[1]] += 5.0  # only the second example's centre atom
    changed = kind.forward(encoder, head, moved)
    assert out.shape == (2, 20) and torch.equal(out[0], changed[0]) and not torch.equal(out[1], changed[1])
