"""Pooling registry: every operator on real-size residue graphs and a 600-atom cloud; the PoolOutput contract."""
from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import scatter

from pa_geo.errors import ConfigError
from pa_geo.nn.pooling import PoolOutput, available_poolings, get_pooling
from tests.helpers.nn_graphs import atom_graph, residue_batch, residue_graph

ALL = ["asap", "edge", "graclus", "none", "sag", "topk", "voxel"]
SELECTION = ["topk", "sag", "asap"]
D = 32


def run(name: str, batch: Batch, requires_grad: bool = True, **kwargs) -> tuple[PoolOutput, torch.Tensor]:
    torch.manual_seed(0)
    pool = get_pooling(name, D, **kwargs)
    x = batch.x.clone().requires_grad_(requires_grad)
    return pool(x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos), x


def check_contract(out: PoolOutput, batch: Batch) -> None:
    n, k = batch.num_nodes, out.x.size(0)
    assert 0 < k <= n and out.x.shape == (k, D) and torch.isfinite(out.x).all()
    assert out.batch.shape == (k,) and out.pos.shape == (k, 3)
    assert torch.equal(torch.unique(out.batch), torch.arange(batch.num_graphs))  # every graph keeps a node
    ei = out.edge_index
    assert ei.dtype == torch.long and ei.size(0) == 2 and (ei.numel() == 0 or int(ei.max()) < k)
    assert not bool((ei[0] == ei[1]).any())  # no self loops
    assert torch.equal(out.batch[ei[0]], out.batch[ei[1]])  # no edge between graphs
    assert out.edge_attr.shape == (ei.size(1), batch.edge_attr.size(1))
    cluster = out.assignment.cluster
    assert cluster.shape == (n,) and int(cluster.max()) < k and out.assignment.num_clusters == k
    assert torch.equal(out.batch[cluster], batch.batch)  # lifting never crosses graphs
    assert out.lift(out.x).shape == (n, D)


def test_registry_names_and_errors():
    assert available_poolings() == ALL
    with pytest.raises(ConfigError, match="unknown pooling operator 'diffpool'.*graclus.*topk"):
        get_pooling("diffpool", D)
    with pytest.raises(ConfigError, match="unknown option.*ration"):
        get_pooling("topk", D, ration=0.5)
    # An option of another operator is dropped so ablations only swap the name.
    assert get_pooling("graclus", D, ratio=0.3).in_channels == D
    assert get_pooling("TopK", D, ratio=0.25).ratio == 0.25
    with pytest.raises(ConfigError):
        get_pooling("voxel", D, size=0)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_residue_batch(name):
    batch = residue_batch()
    out, x = run(name, batch)
    check_contract(out, batch)
    loss = out.x.pow(2).sum() + out.lift(out.x).sum() + out.edge_attr.sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    params = [p for p in get_pooling(name, D).parameters()]
    if name in ("topk", "sag", "asap", "edge"):
        assert params, f"{name} should have a learnable scorer"


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_atom_graph(name):
    batch = atom_graph(D)
    assert batch.num_nodes == 600
    out, x = run(name, batch, size=4.0)
    check_contract(out, batch)
    (out.x.sum() + out.lift(out.x).pow(2).sum()).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", SELECTION)
def test_selection_keeps_ceil_ratio_per_graph_and_positions(name):
    batch = residue_batch()
    out, _ = run(name, batch, ratio=0.3)
    sizes = torch.bincount(batch.batch).tolist()
    assert torch.bincount(out.batch).tolist() == [math.ceil(0.3 * s) for s in sizes]
    cluster = out.assignment.cluster
    kept = out.assignment.kept
    # Kept nodes lift from themselves and the pooled position is the kept node's position.
    assert torch.equal(cluster[kept], torch.arange(kept.numel()))
    assert torch.equal(out.pos, batch.pos[kept]) and torch.equal(out.batch, batch.batch[kept])
    # A dropped node lifts from the nearest kept node of its graph.
    dropped = torch.tensor([i for i in range(batch.num_nodes) if i not in set(kept.tolist())])
    d_assigned = (batch.pos[dropped] - out.pos[cluster[dropped]]).norm(dim=-1)
    for i, d in zip(dropped.tolist()[::25], d_assigned.tolist()[::25]):
        same = out.batch == batch.batch[i]
        assert d == pytest.approx((out.pos[same] - batch.pos[i]).norm(dim=-1).min().item(), abs=1e-5)


def test_selection_without_geometry_lifts_by_sequence_position():
    batch = residue_batch(chains=(0,))
    batch.pos = torch.zeros_like(batch.pos)  # a sequence-only protein
    out, _ = run("topk", batch, ratio=0.2)
    cluster = out.assignment.cluster
    counts = torch.bincount(cluster, minlength=out.x.size(0))
    assert counts.min() >= 1
    # Every pooled node covers one contiguous stretch of the sequence.
    for c in range(out.x.size(0)):
        members = torch.nonzero(cluster == c, as_tuple=True)[0]
        assert int(members.max() - members.min()) + 1 == members.numel()


@pytest.mark.parametrize("name", ["graclus", "voxel", "edge"])
def test_clustering_pools_positions_as_centroids(name):
    batch = residue_batch()
    out, _ = run(name, batch)
    cluster = out.assignment.cluster
    centroid = scatter(batch.pos, cluster, dim=0, reduce="mean")
    assert torch.allclose(out.pos, centroid, atol=1e-5)
    if name == "graclus":  # pairs at most
        assert torch.bincount(cluster).max() <= 2 and out.x.size(0) < 0.7 * batch.num_nodes


def test_pooled_edge_attr_is_mean_of_merged_edges():
    batch = residue_batch(chains=(0,))
    out, _ = run("graclus", batch)
    cluster = out.assignment.cluster
    src, dst = cluster[batch.edge_index[0]], cluster[batch.edge_index[1]]
    a, b = out.edge_index[:, 0].tolist()
    merged = (src == a) & (dst == b)
    assert torch.allclose(out.edge_attr[0], batch.edge_attr[merged].mean(dim=0))


def test_voxel_size_translation_and_node_order():
    batch = residue_batch(chains=(1,))
    fine, _ = run("voxel", batch, size=4.0)
    coarse, _ = run("voxel", batch, size=12.0)
    assert coarse.x.size(0) < fine.x.size(0)
    shifted = batch.clone()
    shifted.pos = batch.pos + torch.tensor([13.7, -4.2, 100.0])
    moved, _ = run("voxel", shifted, size=12.0)
    assert torch.allclose(_sorted_rows(moved.x), _sorted_rows(coarse.x), atol=1e-5)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(1))
    inv = torch.argsort(perm)
    permuted = batch.clone()
    permuted.x, permuted.pos = batch.x[perm], batch.pos[perm]
    permuted.edge_index, permuted.edge_attr = inv[batch.edge_index], batch.edge_attr
    reordered, _ = run("voxel", permuted, size=12.0)
    assert torch.allclose(_sorted_rows(reordered.x), _sorted_rows(coarse.x), atol=1e-5)


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    return x[torch.argsort(x[:, 0])]


@pytest.mark.parametrize("name", ALL)
def test_graph_pools_the_same_alone_and_in_a_batch(name):
    pool = get_pooling(name, D).eval()
    alone = Batch.from_data_list([residue_graph(1, D)])
    batch = residue_batch(chains=(0, 1, 2))
    with torch.no_grad():
        a = pool(alone.x, alone.edge_index, alone.edge_attr, alone.batch, alone.pos)
        b = pool(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos)
    mine = b.batch == 1
    assert torch.allclose(_sorted_rows(a.x), _sorted_rows(b.x[mine]), atol=1e-5)
    lifted = b.lift(b.x)[batch.batch == 1]
    assert torch.allclose(a.lift(a.x), lifted, atol=1e-5)
