"""Node-budget batch sampler (epoch-tagged indices), the task collater and label encoding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler
from torch_geometric.data import Data

from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein
from pa_geo.tasks.spec import TaskRecord, TaskSpec
from pa_geo.tasks.kinds.data import PairData
from pa_geo.tasks.kinds.labels import encode_graph_label, encode_node_label
from pa_geo.train.collate import TaskCollater
from pa_geo.train.sampler import NodeBudgetBatchSampler

SIZES = [5, 50, 7, 120, 33, 33, 90, 12, 300, 41, 8, 77]


def _flat(batches):
    return sorted(i for b in batches for i in b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_index_once_within_budget(shuffle: bool) -> None:
    s = NodeBudgetBatchSampler(SIZES, budget=128, shuffle=shuffle, seed=3, bucket_size=4)
    batches = list(s)
    assert _flat(batches) == list(range(len(SIZES)))
    for b in batches:
        nodes = sum(SIZES[i] for i in b)
        assert nodes <= 128 or len(b) == 1  # the 300-node graph goes alone
    assert len(s) == len(batches)


def test_every_training_epoch_has_len_batches_within_budget() -> None:
    """Lightning validates after len(sampler) batches: every epoch must yield exactly that many (else an epoch with
    fewer batches skips its validation). Real StructureDB lengths, budgets from 2 to 30 graphs per batch."""
    sizes = np.load(Path(__file__).resolve().parents[2] / "data" / "structuredb_subset.npz")["lengths"][:495].tolist()
    for budget in (400, 1000, 3000, 6000):
        s = NodeBudgetBatchSampler(sizes, budget=budget, shuffle=True, seed=0, bucket_size=256)
        counts = []
        for epoch in range(12):
            s.set_epoch(epoch)
            batches = list(s)
            counts.append(len(batches))
            assert _flat(batches) == list(range(len(sizes)))
            assert all(sum(sizes[i] for i in b) <= budget or len(b) == 1 for b in batches)
        assert counts == [len(s)] * 12, (budget, counts)
    plain = [len(NodeBudgetBatchSampler(sizes, 1000, True, 0, 256)._packed(e)[0]) for e in range(12)]
    assert len(set(plain)) > 1  # without evening out, the counts do differ between epochs


def test_eval_order_is_length_sorted_and_deterministic() -> None:
    s = NodeBudgetBatchSampler(SIZES, budget=100)
    flat = [i for b in s for i in b]
    assert [SIZES[i] for i in flat] == sorted(SIZES)
    assert list(s) == list(NodeBudgetBatchSampler(SIZES, budget=100))


def test_shuffle_changes_with_epoch_and_buckets_are_sorted() -> None:
    s = NodeBudgetBatchSampler(SIZES * 4, budget=150, shuffle=True, seed=0, bucket_size=8)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert first != second and _flat(first) == _flat(second)
    s.set_epoch(0)
    assert list(s) == first


def test_distributed_ranks_split_evenly_without_overlap() -> None:
    sizes = SIZES * 3
    ranks = []
    for rank in range(2):
        ds = DistributedSampler(list(range(len(sizes))), num_replicas=2, rank=rank, shuffle=False)
        ranks.append(list(NodeBudgetBatchSampler(sizes, budget=100, shuffle=True, seed=1, sampler=ds)))
    assert len(ranks[0]) == len(ranks[1])  # equal step counts: DDP all-reduce never waits on a finished rank
    total = len(NodeBudgetBatchSampler(sizes, budget=100, shuffle=True, seed=1).global_batches())
    unique = {tuple(b) for r in ranks for b in r}
    assert len(unique) == total  # every global batch is served by some rank


def _graph(n: int, pid: str) -> Data:
    return Data(x=torch.randn(n, 4), edge_index=torch.stack([torch.arange(n - 1), torch.arange(1, n)]),
                protein_id=pid, num_nodes=n)


def test_lightning_reaches_the_epoch_with_and_without_ddp() -> None:
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    plain = NodeBudgetBatchSampler(SIZES, budget=128, shuffle=True)
    _set_sampler_epoch(DataLoader(list(range(len(SIZES))), batch_sampler=plain), 3)  # what Lightning's loops call
    assert plain.epoch == 3
    dist = DistributedSampler(list(range(len(SIZES))), num_replicas=2, rank=1, shuffle=False)
    ddp = NodeBudgetBatchSampler(SIZES, budget=128, shuffle=True, sampler=dist)
    _set_sampler_epoch(DataLoader(list(range(len(SIZES))), batch_sampler=ddp), 5)
    assert ddp.epoch == 5 and list(ddp) == [b for b in NodeBudgetBatchSampler(SIZES, 128, True, sampler=dist)]


def test_sampler_tags_training_indices_with_the_epoch() -> None:
    s = NodeBudgetBatchSampler(SIZES, budget=128, shuffle=True, seed=3, with_epoch=True)
    s.set_epoch(4)
    batches = list(s)
    assert all(e == 4 for b in batches for _, e in b)
    plain = NodeBudgetBatchSampler(SIZES, budget=128, shuffle=True, seed=3)
    plain.set_epoch(4)
    assert [[i for i, _ in b] for b in batches] == list(plain)


def test_task_collater_is_pyg_batching_plus_task_and_split() -> None:
    exs = [PairData.from_parts({"a": _graph(3 + i, f"a{i}"), "b": _graph(5, f"b{i}")}, y=torch.tensor([[float(i)]]),
                               record_id=f"r{i}", extra_target=f"t{i}") for i in range(3)]
    b = TaskCollater("ppi", "valid")(exs)
    assert (b.task, b.split, b.num_graphs) == ("ppi", "valid", 3)
    assert b.y.tolist() == [[0.0], [1.0], [2.0]] and b.record_id == ["r0", "r1", "r2"]
    assert b.extra_target == ["t0", "t1", "t2"] and b.a__num_nodes.tolist() == [3, 4, 5]
    assert b.to("cpu").b__protein_id == ["b0", "b1", "b2"] and b.to("cpu").task == "ppi"
    with pytest.raises(ValueError, match="empty"):
        TaskCollater("ppi", "valid")([])


def _spec(**kw) -> TaskSpec:
    base = dict(name="t", input_kind="sequence", level="graph", label_type="regression", num_outputs=1,
                metrics=["mae"], primary_metric="mae", splits=["train", "valid", "test"])
    return TaskSpec(**{**base, **kw})


def _rec(label, mask=None) -> TaskRecord:
    return TaskRecord("rec1", [Protein.from_sequence("p", "ACDEF")], label, label_mask=mask)


def test_graph_labels_follow_the_schema() -> None:
    assert encode_graph_label(_spec(), _rec(1.5)).shape == (1, 1)
    y = encode_graph_label(_spec(label_type="multiclass", num_outputs=4), _rec(2))
    assert y.dtype == torch.long and y.tolist() == [2]
    ml = encode_graph_label(_spec(label_type="multilabel", num_outputs=3), _rec(np.array([0, 1, 1])))
    assert ml.tolist() == [[0.0, 1.0, 1.0]]


@pytest.mark.parametrize("spec_kw,label", [
    ({}, "high"),                                            # a string for a regression task
    ({"label_type": "multiclass", "num_outputs": 3}, 3),     # class out of range
    ({"label_type": "multiclass", "num_outputs": 3}, 1.5),   # not an integer class
    ({"label_type": "binary"}, 0.3),                         # binary label not 0/1
    ({"num_outputs": 2}, 1.0),                               # width mismatch
])
def test_wrong_label_types_are_one_line_errors(spec_kw, label) -> None:
    with pytest.raises(DatasetError) as err:
        encode_graph_label(_spec(**spec_kw), _rec(label))
    assert "rec1" in str(err.value) and "\n" not in str(err.value)


def test_node_labels_and_mask() -> None:
    spec = _spec(level="node", label_type="multiclass", num_outputs=3)
    y, m = encode_node_label(spec, _rec(np.array([0, 1, 2, 9, 1]), np.array([1, 1, 1, 0, 1], bool)), 5)
    assert y.tolist() == [0, 1, 2, 0, 1] and m.tolist() == [True, True, True, False, True]
    with pytest.raises(DatasetError, match="rec1"):
        encode_node_label(spec, _rec(np.array([0, 1, 2])), 5)
    with pytest.raises(DatasetError, match="integers"):
        encode_node_label(spec, _rec(np.zeros(5, np.float32)), 5)


def test_smiles_graph_elements_and_bonds() -> None:
    from pa_geo.graphs.schema import ELEMENT_INDEX
    from pa_geo.graphs.ligand import smiles_graph

    g = smiles_graph("OC(=O)c1ccccc1[Na]", "lig")  # benzoic acid with a sodium: 10 heavy atoms
    assert g.num_nodes == 10
    assert g.element.tolist().count(ELEMENT_INDEX["O"]) == 2 and ELEMENT_INDEX["NA"] in g.element.tolist()
    assert g.edge_index.shape[1] == 2 * 10  # 10 bonds (ring closure included), both directions
    assert g.edge_attr[:, 3].sum() == 12 and g.edge_attr[:, 1].sum() == 2  # 6 aromatic, 1 double bond
    with pytest.raises(DatasetError, match="lig: cannot parse SMILES"):
        smiles_graph("C1CC(", "lig")
