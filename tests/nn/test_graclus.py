"""Graclus pooling: the batched matching equals the sequential greedy one, eval reproduces the first version's
per-graph clustering, and an eval pass leaves every global RNG alone."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.nn.pooling import get_pooling
from pa_geo.nn.pooling.graclus import greedy_matching
from tests.helpers.nn_graphs import atom_graph, residue_batch

torch_cluster = pytest.importorskip("torch_cluster")
D = 16


def sequential_greedy(edge_index: torch.Tensor, weight: torch.Tensor, order: torch.Tensor, n: int) -> torch.Tensor:
    """torch-cluster's CPU loop, written out: visit ``order``; an open u takes the open neighbour of largest
    weight (>= 0; ties: the last such edge in input order) or itself; cluster = min(u, v)."""
    out = [-1] * n
    edges = [(int(u), int(v), float(w)) for (u, v), w in zip(edge_index.T.tolist(), weight) if u != v]
    for u in order.tolist():
        if out[u] >= 0:
            continue
        best, best_w = u, 0.0
        for a, v, w in edges:
            if a == u and out[v] < 0 and w >= best_w:
                best, best_w = v, w
        out[u] = out[best] = min(u, best)
    return torch.tensor(out)


@pytest.mark.parametrize("seed", range(4))
def test_batched_matching_equals_the_sequential_greedy_loop(seed):
    g = torch.Generator().manual_seed(seed)
    n = 60
    edge_index = torch.randint(0, n, (2, 240), generator=g)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    weight = torch.randint(0, 4, (edge_index.shape[1],), generator=g).float()  # many ties
    order = torch.randperm(n, generator=g)
    priority = torch.empty_like(order).scatter_(0, order, torch.arange(n))
    got = greedy_matching(edge_index, weight, priority, n)
    assert torch.equal(got, sequential_greedy(edge_index, weight, order, n))
    directed = edge_index[:, :240]  # u only sees its outgoing edges
    assert torch.equal(greedy_matching(directed, weight[:240], priority, n),
                       sequential_greedy(directed, weight[:240], order, n))


def first_version_eval(pool, batch: Batch) -> torch.Tensor:
    """The first version's eval path: torch-cluster per graph under ``torch.manual_seed(seed)`` (RNG forked)."""
    weight = pool._weights(batch.edge_index, batch.pos, batch.num_nodes)
    cluster, k = torch.empty(batch.num_nodes, dtype=torch.long), 0
    ptr = batch.ptr.tolist()
    for gi in range(batch.num_graphs):
        lo, hi = ptr[gi], ptr[gi + 1]
        sel = batch.batch[batch.edge_index[0]] == gi
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(pool.seed)
            c = torch_cluster.graclus_cluster(batch.edge_index[0, sel] - lo, batch.edge_index[1, sel] - lo,
                                              weight[sel], hi - lo)
        _, c = torch.unique(c, return_inverse=True)
        cluster[lo:hi] = c + k
        k += int(c.max()) + 1
    return cluster


@pytest.mark.parametrize("chains", [(0,), (3, 1), (0, 1, 2, 3)])
def test_eval_reproduces_the_first_versions_per_graph_clustering(chains):
    pool = get_pooling("graclus", D).eval()
    batch = residue_batch(chains, dim=D)
    out = pool(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos)
    assert torch.equal(out.assignment.cluster, first_version_eval(pool, batch))
    atoms = atom_graph(D)
    out = pool(atoms.x, atoms.edge_index, atoms.edge_attr, atoms.batch, atoms.pos)
    assert torch.equal(out.assignment.cluster, first_version_eval(pool, atoms))


def test_eval_leaves_the_global_rng_alone_and_training_stays_random():
    batch = residue_batch((0, 1), dim=D)
    pool = get_pooling("graclus", D)
    args = (batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = pool.eval()(*args).assignment.cluster
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(pool(*args).assignment.cluster, first)  # deterministic in eval
    pool.train()
    runs = [pool(*args).assignment.cluster for _ in range(3)]
    assert not all(torch.equal(r, runs[0]) for r in runs[1:])  # random visiting order in training
    assert not torch.equal(torch.get_rng_state(), state)


@pytest.mark.cuda
def test_eval_leaves_every_cuda_rng_alone_and_matches_cpu():
    batch = residue_batch((0, 1, 2), dim=D)
    pool = get_pooling("graclus", D).eval()
    cpu = pool(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos).assignment.cluster
    torch.cuda.manual_seed_all(7)
    states = torch.cuda.get_rng_state_all()
    gpu_batch = batch.cuda()
    out = pool.cuda()(gpu_batch.x, gpu_batch.edge_index, gpu_batch.edge_attr, gpu_batch.batch, gpu_batch.pos)
    assert torch.equal(out.assignment.cluster.cpu(), cpu)
    pool.cpu()(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.pos)  # a CPU eval pass too
    assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), states))
